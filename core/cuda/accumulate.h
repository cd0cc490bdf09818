#ifndef TRIDENT_CORE_CUDA_ACCUMULATE_H_
#define TRIDENT_CORE_CUDA_ACCUMULATE_H_

// dst += src elementwise on the GPU, in fp32 arithmetic whatever the storage
// type. cuBLASLt's bias-gradient epilogues overwrite their output, while the
// project's LinearWeightGrad accumulates (micro-batches sum into one buffer):
// the GEMM library writes the bias gradient to scratch and adds it with this.

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "core/dtype.h"

namespace trident::cuda {

// Queues the kernel on `stream`. INVALID_ARGUMENT for a non-float dtype,
// UNAVAILABLE (with CUDA's error name) when the launch fails.
absl::Status AccumulateInto(cudaStream_t stream, DType dtype, const void* src, void* dst,
                            int64_t count);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ACCUMULATE_H_
