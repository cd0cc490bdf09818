#ifndef TRIDENT_CORE_CUDA_COPY_H_
#define TRIDENT_CORE_CUDA_COPY_H_

// Stream-ordered copies between tensors on the host and on GPUs, for the hot
// path (the allocator's synchronous CopyFromHost/CopyToHost are for tests and
// loaders).
//
// Host tensors come from CpuAllocator, i.e. pageable memory: CUDA stages such
// copies through a pinned buffer, so a host->device copy returns once the
// source has been read and a device->host copy returns once the data has
// landed; only device->device copies are truly asynchronous. Pinned host
// allocations come with the backend.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

// dst = src, queued on `stream`. Both contiguous, same dtype and shape, each on
// the CPU or a CUDA device (cudaMemcpyDefault: unified addressing tells where
// each pointer lives). INVALID_ARGUMENT naming the mismatch, checked before
// any CUDA call; UNAVAILABLE with CUDA's error name if the copy fails.
absl::Status CopyTensorAsync(cudaStream_t stream, const Tensor& src, const Tensor& dst);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_COPY_H_
