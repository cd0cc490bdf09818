#ifndef TRIDENT_CORE_OPS_LAYER_NORM_H_
#define TRIDENT_CORE_OPS_LAYER_NORM_H_

// LayerNorm over the last dim, as torch.nn.LayerNorm (biased variance):
//   y = (x - mean) * rstd * gamma + beta,   rstd = 1 / sqrt(var + epsilon).
//
// Shapes: x and y have rows x C (any leading dims, e.g. [batch, seq, C]);
// gamma, beta, dgamma, dbeta are [C]; mean and rstd hold one fp32 per row
// (any shape with `rows` elements, e.g. [batch, seq]), saved by the forward for
// the backward. All contiguous fp32.
//
// The backward is split (DESIGN.md rule 4): LayerNormBackwardInput gives dx
// (overwritten), LayerNormBackwardWeights ACCUMULATES dgamma and dbeta, so a
// zero-bubble schedule can run it later and micro-batches sum into one buffer.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

inline constexpr float kLayerNormEpsilon = 1e-5f;  // GPT-2's and PyTorch's default.

// y may be x (in place).
void LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                      const Tensor& beta, float epsilon, const Tensor& y, const Tensor& mean,
                      const Tensor& rstd);

// dx = dLoss/dx from dy = dLoss/dy; dx may be dy (in place).
void LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                            const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                            const Tensor& dx);

// The residual add fused with the LayerNorm that follows it (one pass over
// each row, the shape of a fused add + LayerNorm kernel):
//   sum = a + b;  y = LayerNorm(sum)  (mean, rstd of sum, as LayerNormForward).
// sum may be a or b (in place); y must be another buffer. Bitwise the same as
// Add(a, b, sum) then LayerNormForward(sum, ...).
void AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                         const Tensor& gamma, const Tensor& beta, float epsilon, const Tensor& sum,
                         const Tensor& y, const Tensor& mean, const Tensor& rstd);

// Its backward for the inputs: dx = LayerNormBackwardInput(x = sum, dy) +
// d_residual, where d_residual is the gradient reaching `sum` by the residual
// path (both a and b get dx). dx may be dy or d_residual (in place). Bitwise
// the same as LayerNormBackwardInput then Add.
void AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                               const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                               const Tensor& d_residual, const Tensor& dx);

// dgamma += sum over rows of dy * (x - mean) * rstd;  dbeta += sum over rows of dy.
// Sums in double per column in row order (deterministic for any thread count).
void LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                              const Tensor& dbeta);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_LAYER_NORM_H_
