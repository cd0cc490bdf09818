#ifndef TRIDENT_CORE_OPS_OPTIMIZER_H_
#define TRIDENT_CORE_OPS_OPTIMIZER_H_

// AdamW update and gradient-norm helpers. Tensors are contiguous fp32 of one
// shape; the optimizer state (exp_avg, exp_avg_sq) starts at zero.

#include "absl/types/span.h"
#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

// One AdamW step in place, the same arithmetic as torch.optim.AdamW:
//   g = grad_scale * grad
//   param *= 1 - lr * weight_decay                    (decay == kApply only)
//   exp_avg    = beta1 * exp_avg    + (1 - beta1) * g
//   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g^2
//   param -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq / (1 - beta2^step)) + eps)
// GPT-2 training applies weight decay to matrices and not to biases, LayerNorm
// parameters or (by convention here) embeddings: the caller says which per tensor.
void AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
               const Tensor& exp_avg, const Tensor& exp_avg_sq, const AdamWOptions& options,
               WeightDecay decay);

// sqrt(sum over tensors of SumOfSquares), in double (see reduction.h). With
// sharded gradients, all-reduce the sum of squares over the group before the
// square root instead.
double GlobalL2Norm(const ExecContext& ctx, absl::Span<const Tensor> tensors);

// The factor clipping scales gradients by: min(1, max_norm / (total_norm + 1e-6)),
// as torch.nn.utils.clip_grad_norm_. Pass it as AdamWOptions::grad_scale, or
// apply it with Scale.
float ClipCoefficient(double total_norm, float max_norm);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_OPTIMIZER_H_
