#ifndef TRIDENT_CORE_OPS_ELEMENTWISE_H_
#define TRIDENT_CORE_OPS_ELEMENTWISE_H_

// Elementwise ops, bias add and bias gradient.
//
// Tensors are fp32 and contiguous unless stated (Copy takes any strides).
// "Rows" of a tensor whose last dim is C are its numel / C vectors of length C:
// an activation [batch, seq, C] or [tokens, C] has batch * seq rows.
// Outputs are overwritten, except the gradient outputs named d* (BiasGrad),
// which accumulate (+=).

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

// Every element of x = value.
void Fill(const ExecContext& ctx, const Tensor& x, float value);

// dst = src, elementwise, for tensors of the same shape. Any dtype; any strides
// on either side (the general "make contiguous" / "write into a slice" op). With
// different dtypes, converts between fp32, bf16 and fp16 (round to nearest
// even); both must then be contiguous.
void Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst);

// x itself when contiguous, otherwise a contiguous copy from ctx.allocator().
Tensor Contiguous(const ExecContext& ctx, const Tensor& x);
// A contiguous copy from ctx.allocator(), always new storage.
Tensor Clone(const ExecContext& ctx, const Tensor& x);

// out = a + b for tensors of one shape (the residual add); out may be a or b.
void Add(const ExecContext& ctx, const Tensor& a, const Tensor& b, const Tensor& out);

// y += alpha * x (same shape).
void Axpy(const ExecContext& ctx, float alpha, const Tensor& x, const Tensor& y);

// x *= alpha, in place (gradient clipping, averaging).
void Scale(const ExecContext& ctx, const Tensor& x, float alpha);

// Every row of out = row: row is [C], out has last dim C. Prepares a GEMM
// output so that Gemm(..., beta = 1) adds the bias for free.
void BroadcastRows(const ExecContext& ctx, const Tensor& row, const Tensor& out);

// Every row of x += bias ([C]), in place.
void BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x);

// dbias += the sum of the rows of dy (accumulates; dbias is [C]). Sums in
// double, per column, in row order: deterministic for any thread count.
void BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_ELEMENTWISE_H_
