#ifndef TRIDENT_CORE_OPS_GELU_H_
#define TRIDENT_CORE_OPS_GELU_H_

// GELU, tanh approximation (GPT-2's "gelu_new", torch's approximate="tanh"):
//   y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// Tensors of one shape, contiguous fp32. Outputs are overwritten.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

// y may be x (in place), but the backward needs x: keep it when training.
void GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y);

// dx = dy * GELU'(x); dx may be dy (in place).
void GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_GELU_H_
