#ifndef TRIDENT_CORE_CUDA_STREAM_RELEASE_H_
#define TRIDENT_CORE_CUDA_STREAM_RELEASE_H_

// State kept per CUDA stream (the backend's cuBLASLt handle and workspace, its
// attention plans) must go when the stream goes: a new stream may reuse the
// address, and the workspace holds device memory. Whoever keeps such state
// adds a hook; whoever destroys a stream runs the hooks first, after the
// stream's work has finished (CudaContext does).

namespace trident::cuda {

// Called with the stream (a cudaStream_t) that is about to be destroyed.
using StreamReleaseHook = void (*)(void* stream);

// Adds `hook` for every later release. Thread-safe.
void AddStreamReleaseHook(StreamReleaseHook hook);

// Runs every hook with `stream`. Thread-safe.
void ReleaseStreamState(void* stream);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_STREAM_RELEASE_H_
