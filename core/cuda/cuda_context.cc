#include "core/cuda/cuda_context.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cuda/host_sync.h"
#include "core/cuda/stream_release.h"

namespace trident::cuda {
namespace {

absl::Status CudaError(const char* what, int device, cudaError_t error) {
  return absl::UnavailableError(absl::StrCat(what, " on CUDA device ", device, ": ",
                                             cudaGetErrorName(error), " (",
                                             cudaGetErrorString(error), ")"));
}

}  // namespace

absl::StatusOr<CudaContext> MakeCudaContext(int device, std::string allocator_name) {
  // Create() checks the index against the device count and selects the device.
  absl::StatusOr<std::shared_ptr<CudaCachingAllocator>> allocator =
      CudaCachingAllocator::Create(device, std::move(allocator_name));
  if (!allocator.ok()) return allocator.status();
  cudaStream_t stream = nullptr;
  const cudaError_t error = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (error != cudaSuccess) return CudaError("cudaStreamCreateWithFlags", device, error);
  ExecContext exec(Device::Cuda(device), stream, /*num_threads=*/1, *allocator);
  return CudaContext(std::move(exec), *std::move(allocator));
}

CudaContext::CudaContext(ExecContext exec, std::shared_ptr<CudaCachingAllocator> allocator)
    : exec_(std::move(exec)), allocator_(std::move(allocator)), owned_stream_(exec_.stream()) {}

CudaContext::CudaContext(CudaContext&& other) noexcept
    : exec_(other.exec_),
      allocator_(other.allocator_),
      owned_stream_(std::exchange(other.owned_stream_, nullptr)) {}

CudaContext& CudaContext::operator=(CudaContext&& other) noexcept {
  if (this != &other) {
    Release();
    exec_ = other.exec_;
    allocator_ = other.allocator_;
    owned_stream_ = std::exchange(other.owned_stream_, nullptr);
  }
  return *this;
}

CudaContext::~CudaContext() { Release(); }

void CudaContext::Release() {
  if (owned_stream_ == nullptr) return;
  // Kernels may still read tensors whose blocks the allocator would hand out
  // again: wait for them before the stream goes. A destructor cannot return a
  // status, so failures are reported on stderr.
  if (const absl::Status status = Synchronize(); !status.ok()) {
    std::fprintf(stderr, "CudaContext: queued work failed: %s\n", status.ToString().c_str());
  }
  ReleaseStreamState(owned_stream_);
  const cudaError_t error = cudaStreamDestroy(static_cast<cudaStream_t>(owned_stream_));
  if (error != cudaSuccess) {
    std::fprintf(stderr, "CudaContext: %s\n",
                 CudaError("cudaStreamDestroy", device_index(), error).ToString().c_str());
  }
  owned_stream_ = nullptr;
}

absl::Status CudaContext::Synchronize() const {
  CountHostSync();
  const cudaError_t error = cudaStreamSynchronize(static_cast<cudaStream_t>(exec_.stream()));
  if (error != cudaSuccess) return CudaError("cudaStreamSynchronize", device_index(), error);
  return absl::OkStatus();
}

}  // namespace trident::cuda
