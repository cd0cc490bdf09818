#ifndef TRIDENT_CORE_OPS_GEMM_H_
#define TRIDENT_CORE_OPS_GEMM_H_

// Matrix products, BLAS-style: C = alpha * op(A) op(B) + beta * C, where
// op(X) = X (Trans::kNo) or X^T (Trans::kYes).
//
// Operands are fp32 matrices on the context's device with a unit column stride
// and any row stride >= their column count, so column slices of a bigger matrix
// (a head's Q inside a fused QKV activation, a tp shard's window of a weight)
// are used in place. beta = 0 overwrites C without reading it (garbage or NaN in
// C is fine); beta = 1 accumulates, which is how weight gradients are summed
// over micro-batches. C must not overlap A or B.
//
// Linear layers, for x [tokens, in] and weight W [in, out] (GPT-2's Conv1D
// layout):   y  = x W          Gemm(ctx, x, kNo, W, kNo, y)
//            dx = dy W^T       Gemm(ctx, dy, kNo, W, kYes, dx)
//            dW += x^T dy      Gemm(ctx, x, kYes, dy, kNo, dW, 1, 1)
// With W stored [out, in] (torch.nn.Linear) swap the Trans flags accordingly.
// A bias can ride along: BroadcastRows(ctx, b, y) then Gemm(..., beta = 1).
//
// CPU: OpenBLAS cblas_sgemm, single-threaded inside, split over the context's
// threads by rows or columns of C (see core/exec_context.h for why).

#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

// a: op(a) is [M, K]; b: op(b) is [K, N]; c: [M, N]. All 2-D.
void Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
          const Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// The same for a batch: a, b, c are 3-D [batch, rows, cols]; entry i computes
// c[i] = alpha * op(a[i]) op(b[i]) + beta * c[i]. Batch strides are arbitrary
// (e.g. heads inside a [seq, heads * dim] activation: batch stride = head dim).
void BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                 Trans trans_b, const Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// Convenience: op(a) op(b) in a new tensor from ctx.allocator().
Tensor Matmul(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
              Trans trans_b);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_GEMM_H_
