#ifndef TRIDENT_CORE_CUDA_HOST_SYNC_H_
#define TRIDENT_CORE_CUDA_HOST_SYNC_H_

// The count of host synchronisations: every place in core/cuda/ where the host
// waits for the device (cudaStreamSynchronize, cudaDeviceSynchronize, a
// device->host copy such as a reduction's read-back or CopyTensorAsync into
// host memory, the allocator's synchronous transfers and cache release) calls
// CountHostSync() once. A training step should wait only where it needs a
// number on the host (the loss, the gradient norm when clipping); tests read
// HostSyncCount() before and after a step to hold it to that.
//
// One process-wide counter (relaxed atomics): ranks that are threads of one
// process all add to it, so tests that assert on it run one rank.

#include <cstdint>

namespace trident::cuda {

// Records one host synchronisation.
void CountHostSync();

// Host synchronisations since the process started.
int64_t HostSyncCount();

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_HOST_SYNC_H_
