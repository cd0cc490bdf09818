#include "core/cuda/cuda_allocator.h"

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/cuda/host_sync.h"
#include "core/cuda/size_classes.h"

namespace trident::cuda {
namespace {

// Aborts naming the call and CUDA's error: the Allocator interface's transfers
// cannot fail softly (they are for tests, loaders and checkpoints).
void CheckCuda(cudaError_t error, const char* what) {
  TRIDENT_CHECK(error == cudaSuccess)
      << what << ": " << cudaGetErrorName(error) << " (" << cudaGetErrorString(error) << ")";
}

}  // namespace

absl::StatusOr<std::shared_ptr<CudaCachingAllocator>> CudaCachingAllocator::Create(
    int device_index, std::string name) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaSuccess && (device_index < 0 || device_index >= count)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA device ", device_index, " does not exist: this machine has ", count));
  }
  if (error == cudaSuccess) error = cudaSetDevice(device_index);
  if (error != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("CUDA device ", device_index, ": ",
                                               cudaGetErrorName(error), " (",
                                               cudaGetErrorString(error), ")"));
  }
  return std::shared_ptr<CudaCachingAllocator>(
      new CudaCachingAllocator(device_index, std::move(name)));
}

CudaCachingAllocator::CudaCachingAllocator(int device_index, std::string name)
    : Allocator(std::move(name)), device_index_(device_index) {}

CudaCachingAllocator::~CudaCachingAllocator() {
  absl::MutexLock lock(&mutex_);
  ReleaseCacheLocked();
}

void* CudaCachingAllocator::RawAllocate(size_t bytes) {
  const size_t size_class = SizeClassOf(bytes);
  absl::MutexLock lock(&mutex_);
  auto it = free_lists_.find(size_class);
  if (it != free_lists_.end() && !it->second.empty()) {
    void* block = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= static_cast<int64_t>(size_class);
    return block;
  }
  CheckCuda(cudaSetDevice(device_index_), "cudaSetDevice");
  void* block = nullptr;
  cudaError_t error = cudaMalloc(&block, size_class);
  if (error == cudaErrorMemoryAllocation && cached_bytes_ > 0) {
    // Cached blocks of other classes may be what stands in the way.
    (void)cudaGetLastError();
    ReleaseCacheLocked();
    error = cudaMalloc(&block, size_class);
  }
  if (error != cudaSuccess) {
    (void)cudaGetLastError();  // Clear the sticky-free error so later calls work.
    return nullptr;            // Allocator::Allocate reports the failure.
  }
  reserved_bytes_ += static_cast<int64_t>(size_class);
  ++device_allocations_;
  return block;
}

void CudaCachingAllocator::RawFree(void* ptr, size_t bytes) {
  const size_t size_class = SizeClassOf(bytes);
  absl::MutexLock lock(&mutex_);
  free_lists_[size_class].push_back(ptr);
  cached_bytes_ += static_cast<int64_t>(size_class);
}

void CudaCachingAllocator::ReleaseCache() {
  absl::MutexLock lock(&mutex_);
  ReleaseCacheLocked();
}

void CudaCachingAllocator::ReleaseCacheLocked() {
  if (cached_bytes_ == 0) return;
  // cudaFree waits for the device, so work still using a cached block is done.
  CheckCuda(cudaSetDevice(device_index_), "cudaSetDevice");
  CountHostSync();
  for (auto& [size_class, blocks] : free_lists_) {
    for (void* block : blocks) {
      CheckCuda(cudaFree(block), "cudaFree");
      reserved_bytes_ -= static_cast<int64_t>(size_class);
    }
    blocks.clear();
  }
  cached_bytes_ = 0;
}

int64_t CudaCachingAllocator::reserved_bytes() const {
  absl::MutexLock lock(&mutex_);
  return reserved_bytes_;
}

int64_t CudaCachingAllocator::cached_bytes() const {
  absl::MutexLock lock(&mutex_);
  return cached_bytes_;
}

int64_t CudaCachingAllocator::device_allocations() const {
  absl::MutexLock lock(&mutex_);
  return device_allocations_;
}

// The synchronous transfers run on the legacy default stream, which is not
// ordered with the non-blocking streams of contexts (cuda_context.h): a block
// may still be in use by a kernel queued there (freed on the host, handed out
// again), or a result written there may not have landed yet. So each
// transfer waits for the whole device before and after: one host sync,
// counted, and the reason these are for tests, loaders and checkpoints only.
void CudaCachingAllocator::CopyFromHost(void* dst, const void* host_src, size_t bytes) const {
  if (bytes == 0) return;
  CheckCuda(cudaSetDevice(device_index_), "cudaSetDevice");
  CountHostSync();
  CheckCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize before a copy to the device");
  CheckCuda(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  CheckCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize after a copy to the device");
}

void CudaCachingAllocator::CopyToHost(void* host_dst, const void* src, size_t bytes) const {
  if (bytes == 0) return;
  CheckCuda(cudaSetDevice(device_index_), "cudaSetDevice");
  CountHostSync();
  CheckCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize before a copy to the host");
  CheckCuda(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void CudaCachingAllocator::SetZero(void* dst, size_t bytes) const {
  if (bytes == 0) return;
  CheckCuda(cudaSetDevice(device_index_), "cudaSetDevice");
  CountHostSync();
  CheckCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize before cudaMemset");
  CheckCuda(cudaMemset(dst, 0, bytes), "cudaMemset");
  CheckCuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize after cudaMemset");
}

}  // namespace trident::cuda
