#include "core/ops/gemm.h"

#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckOperand;

// Rows and cols of op(x) for a matrix x given as its last two dims.
struct OpShape {
  int64_t rows;
  int64_t cols;
};

OpShape OpDims(const Tensor& x, Trans trans) {
  const int64_t r = x.dim(-2), c = x.dim(-1);
  return trans == Trans::kNo ? OpShape{r, c} : OpShape{c, r};
}

void CheckMatrixOperand(const ExecContext& ctx, const char* op, const char* name, const Tensor& x,
                        int ndim) {
  CheckOperand(ctx, op, name, x);
  internal::CheckNdim(op, name, x, ndim);
  TRIDENT_CHECK(x.dim(-1) <= 1 || x.stride(-1) == 1)
      << "ops::" << op << ": " << name << " (" << x.DebugString()
      << ") needs a unit column stride, has " << x.stride(-1);
  TRIDENT_CHECK(x.dim(-2) <= 1 || x.stride(-2) >= x.dim(-1))
      << "ops::" << op << ": " << name << " (" << x.DebugString() << ") has row stride "
      << x.stride(-2) << " < its " << x.dim(-1) << " columns";
}

void CheckGemmShapes(const char* op, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
                     const Tensor& c) {
  const OpShape sa = OpDims(a, trans_a), sb = OpDims(b, trans_b);
  TRIDENT_CHECK(sa.cols == sb.rows && c.dim(-2) == sa.rows && c.dim(-1) == sb.cols)
      << "ops::" << op << ": op(a) is [" << sa.rows << ", " << sa.cols << "] (a " << a.DebugString()
      << (trans_a == Trans::kYes ? " transposed" : "") << "), op(b) is [" << sb.rows << ", "
      << sb.cols << "] (b " << b.DebugString() << (trans_b == Trans::kYes ? " transposed" : "")
      << "), c is " << c.DebugString() << ": need op(a) [M, K], op(b) [K, N], c [M, N]";
}

// The observer installed on this thread (ScopedGemmObserver), or null.
thread_local GemmObserver* current_gemm_observer = nullptr;

// Row stride of the matrix stored in x's last two dims, as the backends use it.
int64_t RowStride(const Tensor& x) {
  return x.dim(-2) <= 1 ? std::max<int64_t>(x.dim(-1), 1) : x.stride(-2);
}

GemmCall DescribeCall(bool batched, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
                      const Tensor& c, float alpha, float beta) {
  GemmCall call;
  call.batched = batched;
  call.trans_a = trans_a;
  call.trans_b = trans_b;
  call.m = c.dim(-2);
  call.n = c.dim(-1);
  call.k = OpDims(a, trans_a).cols;
  call.batch = batched ? c.dim(0) : 1;
  call.row_stride_a = RowStride(a);
  call.row_stride_b = RowStride(b);
  call.row_stride_c = RowStride(c);
  if (batched) {
    call.batch_stride_a = a.stride(0);
    call.batch_stride_b = b.stride(0);
    call.batch_stride_c = c.stride(0);
  }
  call.alpha = alpha;
  call.beta = beta;
  return call;
}

}  // namespace

ScopedGemmObserver::ScopedGemmObserver(GemmObserver* observer) : previous_(current_gemm_observer) {
  current_gemm_observer = observer;
}

ScopedGemmObserver::~ScopedGemmObserver() { current_gemm_observer = previous_; }

void ObserveAsGemm(const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
                   const Tensor& c, float alpha, float beta, absl::FunctionRef<void()> op) {
  if (GemmObserver* observer = current_gemm_observer; observer != nullptr) {
    const GemmCall call = DescribeCall(false, a, trans_a, b, trans_b, c, alpha, beta);
    observer->BeforeGemm(call);
    op();
    observer->AfterGemm(call);
    return;
  }
  op();
}

void Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
          const Tensor& c, float alpha, float beta) {
  CheckMatrixOperand(ctx, "Gemm", "a", a, 2);
  CheckMatrixOperand(ctx, "Gemm", "b", b, 2);
  CheckMatrixOperand(ctx, "Gemm", "c", c, 2);
  CheckGemmShapes("Gemm", a, trans_a, b, trans_b, c);
  if (GemmObserver* observer = current_gemm_observer; observer != nullptr) {
    const GemmCall call = DescribeCall(false, a, trans_a, b, trans_b, c, alpha, beta);
    observer->BeforeGemm(call);
    BackendFor(ctx).Gemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
    observer->AfterGemm(call);
    return;
  }
  BackendFor(ctx).Gemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
}

void BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                 Trans trans_b, const Tensor& c, float alpha, float beta) {
  CheckMatrixOperand(ctx, "BatchedGemm", "a", a, 3);
  CheckMatrixOperand(ctx, "BatchedGemm", "b", b, 3);
  CheckMatrixOperand(ctx, "BatchedGemm", "c", c, 3);
  TRIDENT_CHECK(a.dim(0) == c.dim(0) && b.dim(0) == c.dim(0))
      << "ops::BatchedGemm: batch sizes differ: a " << a.DebugString() << ", b " << b.DebugString()
      << ", c " << c.DebugString();
  CheckGemmShapes("BatchedGemm", a, trans_a, b, trans_b, c);
  if (GemmObserver* observer = current_gemm_observer; observer != nullptr) {
    const GemmCall call = DescribeCall(true, a, trans_a, b, trans_b, c, alpha, beta);
    observer->BeforeGemm(call);
    BackendFor(ctx).BatchedGemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
    observer->AfterGemm(call);
    return;
  }
  BackendFor(ctx).BatchedGemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
}

Tensor Matmul(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
              Trans trans_b) {
  CheckMatrixOperand(ctx, "Matmul", "a", a, 2);
  CheckMatrixOperand(ctx, "Matmul", "b", b, 2);
  Tensor c =
      Tensor::Empty({OpDims(a, trans_a).rows, OpDims(b, trans_b).cols}, a.dtype(), ctx.allocator());
  Gemm(ctx, a, trans_a, b, trans_b, c);
  return c;
}

}  // namespace trident::ops
