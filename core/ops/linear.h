#ifndef TRIDENT_CORE_OPS_LINEAR_H_
#define TRIDENT_CORE_OPS_LINEAR_H_

// A linear layer's products with their elementwise neighbours fused in, the
// shapes of cuBLASLt's epilogues (CUBLASLT_EPILOGUE_BIAS, _GELU_AUX_BIAS,
// _BGRADB), so a GPU backend maps each op to one cuBLASLt call.
//
// For x [M, K], weight W [K, N] (GPT-2's Conv1D layout), bias b [N], all 2-D
// contiguous fp32:
//   LinearForward, kBias:      y = x W + b
//   LinearForward, kBiasGelu:  pre = x W + b;  y = GELU(pre) (GPT-2's tanh
//                              form, as core/ops/gelu.h); `pre` is the
//                              auxiliary output the backward needs
//                              (GeluBackward(pre, ...)).
//   LinearWeightGrad:          dW += x^T dy;  db += sum over rows of dy
//                              (accumulated: micro-batches sum into one buffer).
// They equal the unfused compositions BroadcastRows(b, y) + Gemm(x, W, y,
// beta = 1) [+ GeluForward(pre, y)] and Gemm(x^T, dy, dW, beta = 1) +
// BiasGrad(dy, db) bit for bit on the CPU: the same arithmetic, the epilogue
// applied by each thread to the block of the product it just computed (one
// pass over the threads instead of two or three).

#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

// `pre` must be defined with y's shape for kBiasGelu and is ignored for kBias.
void LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                   const Tensor& bias, LinearEpilogue epilogue, const Tensor& y,
                   const Tensor& pre = Tensor());

void LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                      const Tensor& dweight, const Tensor& dbias);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_LINEAR_H_
