#ifndef TRIDENT_CORE_CUDA_CUDA_CONTEXT_H_
#define TRIDENT_CORE_CUDA_CUDA_CONTEXT_H_

// An ExecContext on one GPU, with what it needs kept alive: a caching
// allocator of that GPU's memory and a non-blocking stream of its own. Every op
// given exec() queues its kernels on that stream, so one rank's work is
// ordered without host waits; the host waits only in Synchronize() and where
// an op returns a number (see host_sync.h).
//
// Ownership: a CudaContext owns the stream; copies of exec() borrow it and
// must not outlive the CudaContext. Destruction waits for the stream's work,
// then destroys it. The allocator is shared (tensors keep it alive).
//
// Model code makes parameters with Tensor::Zeros(shape, dtype, device), i.e.
// on DefaultAllocator(device) (core/device.h), which nothing registers for a
// GPU by itself: a trainer calls SetDefaultAllocator(Device::Cuda(i),
// context.allocator()) once per device (a process-wide setting, so it is the
// caller's decision, not this factory's).
//
// This header needs no CUDA headers, so trainer code can hold a CudaContext.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cuda/cuda_allocator.h"
#include "core/exec_context.h"

namespace trident::cuda {

class CudaContext;

// A context on GPU `device`: a caching allocator named `allocator_name` and a
// fresh non-blocking stream. INVALID_ARGUMENT when `device` is not a GPU index
// of this machine; UNAVAILABLE naming the CUDA error when there is no usable
// driver or the stream cannot be created.
absl::StatusOr<CudaContext> MakeCudaContext(int device, std::string allocator_name = "cuda");

class CudaContext {
 public:
  CudaContext(CudaContext&& other) noexcept;
  CudaContext& operator=(CudaContext&& other) noexcept;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext();

  // The context to pass to ops: Device::Cuda(device), this stream, one CPU
  // thread, this allocator.
  const ExecContext& exec() const { return exec_; }
  const std::shared_ptr<CudaCachingAllocator>& allocator() const { return allocator_; }
  int device_index() const { return exec_.device().index; }

  // Waits until the stream's queued work has finished (one counted host
  // sync). UNAVAILABLE with CUDA's error when that work failed.
  absl::Status Synchronize() const;

 private:
  friend absl::StatusOr<CudaContext> MakeCudaContext(int device, std::string allocator_name);
  CudaContext(ExecContext exec, std::shared_ptr<CudaCachingAllocator> allocator);

  // Waits for and destroys the owned stream, if any.
  void Release();

  ExecContext exec_;
  std::shared_ptr<CudaCachingAllocator> allocator_;
  void* owned_stream_ = nullptr;  // exec_.stream(); null once moved from.
};

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_CUDA_CONTEXT_H_
