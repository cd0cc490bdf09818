#ifndef TRIDENT_CORE_CUDA_CUDA_ALLOCATOR_H_
#define TRIDENT_CORE_CUDA_CUDA_ALLOCATOR_H_

// A caching allocator of one GPU's memory behind the project's Allocator
// interface, so Tensor::Empty(shape, dtype, allocator) gives device memory.
//
// Requests are rounded up to a size class (size_classes.h). A freed block is
// not returned to CUDA but cached on its class's free list, and the next
// request of that class takes it back: after the first training step, a step
// allocates without calling cudaMalloc at all (cudaMalloc/cudaFree synchronise
// the device). When cudaMalloc runs out of memory, the cache is released to
// CUDA and the request retried once before the allocator reports failure.
//
// Stream semantics: blocks are reused in host order. That is safe when every
// kernel touching this allocator's memory runs on one stream (a block freed
// on the host is reused by work queued later on the same stream). Work on
// several streams would need per-block events before reuse; that comes with
// the backend's streams.
//
// Accounting: Allocator::bytes_in_use()/peak_bytes() count requested bytes;
// reserved_bytes() counts what is held from CUDA (live blocks at their class
// size plus the cache). reserved - in use is the fragmentation: class padding
// plus cached blocks.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/device.h"

namespace trident::cuda {

class CudaCachingAllocator final : public Allocator {
 public:
  // Fails with UNAVAILABLE (naming the CUDA error) when `device_index` is not
  // a usable GPU, e.g. on a machine without a driver.
  static absl::StatusOr<std::shared_ptr<CudaCachingAllocator>> Create(int device_index,
                                                                      std::string name = "cuda");
  ~CudaCachingAllocator() override;

  Device device() const override { return Device::Cuda(device_index_); }
  // Synchronous cudaMemcpy / cudaMemset, each waiting for the whole device
  // before (and, towards the device, after) so that it is ordered with every
  // stream's work: one counted host sync each (host_sync.h). Abort with the
  // CUDA error on failure.
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) const override;
  void CopyToHost(void* host_dst, const void* src, size_t bytes) const override;
  void SetZero(void* dst, size_t bytes) const override;

  // Bytes held from CUDA: live blocks at their class size plus cached blocks.
  int64_t reserved_bytes() const;
  // Bytes of freed blocks kept for reuse.
  int64_t cached_bytes() const;
  // cudaMalloc calls so far (a warm cache makes none).
  int64_t device_allocations() const;
  // Returns every cached block to CUDA.
  void ReleaseCache();

 protected:
  void* RawAllocate(size_t bytes) override;
  void RawFree(void* ptr, size_t bytes) override;

 private:
  explicit CudaCachingAllocator(int device_index, std::string name);
  void ReleaseCacheLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const int device_index_;
  mutable absl::Mutex mutex_;
  // Size class -> cached blocks of that class.
  std::map<size_t, std::vector<void*>> free_lists_ ABSL_GUARDED_BY(mutex_);
  int64_t reserved_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t cached_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t device_allocations_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_CUDA_ALLOCATOR_H_
