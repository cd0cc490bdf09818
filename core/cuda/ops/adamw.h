#ifndef TRIDENT_CORE_CUDA_OPS_ADAMW_H_
#define TRIDENT_CORE_CUDA_OPS_ADAMW_H_

// AdamW on a GPU: the Backend's AdamWStep (core/ops/optimizer.h) and, for the
// optimizer step of a whole model, MultiTensorAdamW: every parameter in one
// launch (per 256 tensors), one thread block per chunk of 64 Ki elements.
//
// The arithmetic is the CPU twin's (core/ops/cpu/optimizer.cc), operation for
// operation: the scalars (step size lr / (1 - beta1^step), sqrt(1 - beta2^step),
// 1 - lr * weight_decay, 1 - beta1, 1 - beta2) are formed in double on the host
// and rounded to fp32 once, as PyTorch's Python-side scalars are; per element
//   g = grad_scale grad
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g g
//   param = param decay_factor - step_size (m / (sqrt(v) / sqrt(1 - beta2^step) + eps))
// each operation rounded to nearest in fp32 (no fused multiply-adds: the
// result does not depend on what nvcc contracts, and can equal the CPU's bit
// for bit where GCC does not contract either; the tests allow 1e-5). AdamWStep is MultiTensorAdamW on
// one tensor: one home for the arithmetic, so the two agree bit for bit.
//
// dtypes: exp_avg and exp_avg_sq are fp32 (the optimizer's state, see
// training/optimizer.cc); param and grad are each fp32, bf16 or fp16 (mixed
// precision: fp32 master weights with 16-bit gradients; or 16-bit parameters
// updated in fp32 and rounded to nearest even). All contiguous, one shape.
//
// No host synchronisation: the tensor table is a kernel parameter.
// Errors: INVALID_ARGUMENT naming the op, the argument (or options field) and
// the rule, before any launch; UNAVAILABLE when a launch fails.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::cuda {

// One AdamW step in place (core/ops/optimizer.h).
absl::Status AdamWStep(cudaStream_t stream, const Tensor& param, const Tensor& grad,
                       const Tensor& exp_avg, const Tensor& exp_avg_sq,
                       const ops::AdamWOptions& options, ops::WeightDecay decay);

// AdamWStep(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], options,
// decays[i]) for every i, in one launch per 256 tensors. The spans have one
// length; empty tensors are skipped.
absl::Status MultiTensorAdamW(cudaStream_t stream, absl::Span<const Tensor> params,
                              absl::Span<const Tensor> grads, absl::Span<const Tensor> exp_avgs,
                              absl::Span<const Tensor> exp_avg_sqs,
                              absl::Span<const ops::WeightDecay> decays,
                              const ops::AdamWOptions& options);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_ADAMW_H_
