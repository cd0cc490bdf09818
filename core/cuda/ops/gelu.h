#ifndef TRIDENT_CORE_CUDA_OPS_GELU_H_
#define TRIDENT_CORE_CUDA_OPS_GELU_H_

// GELU (tanh approximation) forward and backward on a GPU, the Backend's
// GeluForward / GeluBackward (core/ops/gelu.h), with the CPU twin's formulas
// (core/ops/cpu/vec_math.h):
//   u = sqrt(2/pi) (x + 0.044715 x^3),  s = sigmoid(2u) = 0.5 (1 + tanh(u))
//   GELU(x) = x s,  GELU'(x) = s + x s (1 - s) 2 u'  with u' = sqrt(2/pi) (1 + 3 0.044715 x^2)
// The sigmoid form has no cancellation near u = 0; e^x is CUDA's expf (within
// 2 ulp; the CPU's FastExp is within 2e-7), so the two agree to a few ulp.
//
// Tensors: one shape, one dtype (fp32, bf16 or fp16), contiguous; computed in
// fp32, rounded to nearest even on store. y may be x and dx may be dy (in
// place). Each queues one kernel on `stream` and does not synchronise.
// Errors: INVALID_ARGUMENT naming the op and the argument; UNAVAILABLE when
// the launch fails.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

// y = GELU(x).
absl::Status GeluForward(cudaStream_t stream, const Tensor& x, const Tensor& y);

// dx = dy * GELU'(x).
absl::Status GeluBackward(cudaStream_t stream, const Tensor& x, const Tensor& dy,
                          const Tensor& dx);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_GELU_H_
