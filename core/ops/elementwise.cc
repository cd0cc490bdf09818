#include "core/ops/elementwise.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckContiguous;
using internal::CheckOperand;
using internal::CheckSameShape;

void CheckRowVector(const ExecContext& ctx, const char* op, const char* row_name, const Tensor& row,
                    const char* matrix_name, const Tensor& matrix) {
  CheckContiguous(ctx, op, row_name, row);
  CheckContiguous(ctx, op, matrix_name, matrix);
  TRIDENT_CHECK(matrix.ndim() >= 1 && row.ndim() == 1 && row.dim(0) == matrix.dim(-1))
      << "ops::" << op << ": " << row_name << " is " << row.DebugString() << " but must be ["
      << (matrix.ndim() >= 1 ? matrix.dim(-1) : 0) << "], the last dim of " << matrix_name << " "
      << matrix.DebugString();
}

}  // namespace

void Fill(const ExecContext& ctx, const Tensor& x, float value) {
  CheckContiguous(ctx, "Fill", "x", x);
  BackendFor(ctx).Fill(ctx, x, value);
}

void Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) {
  CheckOperand(ctx, "Copy", "src", src);
  CheckOperand(ctx, "Copy", "dst", dst);
  CheckSameShape("Copy", "dst", dst, "src", src);
  if (src.dtype() != dst.dtype()) {
    TRIDENT_CHECK(IsFloatingPoint(src.dtype()) && IsFloatingPoint(dst.dtype()))
        << "ops::Copy converts between float dtypes only: " << src.DebugString() << " -> "
        << dst.DebugString();
    TRIDENT_CHECK(src.is_contiguous() && dst.is_contiguous())
        << "ops::Copy with conversion needs contiguous tensors: " << src.DebugString() << " -> "
        << dst.DebugString();
  }
  BackendFor(ctx).Copy(ctx, src, dst);
}

Tensor Contiguous(const ExecContext& ctx, const Tensor& x) {
  if (x.is_contiguous()) return x;
  return Clone(ctx, x);
}

Tensor Clone(const ExecContext& ctx, const Tensor& x) {
  CheckOperand(ctx, "Clone", "x", x);
  Tensor copy = Tensor::Empty(x.shape(), x.dtype(), ctx.allocator());
  Copy(ctx, x, copy);
  return copy;
}

void Add(const ExecContext& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  CheckContiguous(ctx, "Add", "a", a);
  CheckContiguous(ctx, "Add", "b", b);
  CheckContiguous(ctx, "Add", "out", out);
  CheckSameShape("Add", "b", b, "a", a);
  CheckSameShape("Add", "out", out, "a", a);
  BackendFor(ctx).Add(ctx, a, b, out);
}

void Axpy(const ExecContext& ctx, float alpha, const Tensor& x, const Tensor& y) {
  CheckContiguous(ctx, "Axpy", "x", x);
  CheckContiguous(ctx, "Axpy", "y", y);
  CheckSameShape("Axpy", "y", y, "x", x);
  BackendFor(ctx).Axpy(ctx, alpha, x, y);
}

void Scale(const ExecContext& ctx, const Tensor& x, float alpha) {
  CheckContiguous(ctx, "Scale", "x", x);
  BackendFor(ctx).Scale(ctx, x, alpha);
}

void BroadcastRows(const ExecContext& ctx, const Tensor& row, const Tensor& out) {
  CheckRowVector(ctx, "BroadcastRows", "row", row, "out", out);
  BackendFor(ctx).BroadcastRows(ctx, row, out);
}

void BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) {
  CheckRowVector(ctx, "BiasAdd", "bias", bias, "x", x);
  BackendFor(ctx).BiasAdd(ctx, bias, x);
}

void BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) {
  CheckRowVector(ctx, "BiasGrad", "dbias", dbias, "dy", dy);
  BackendFor(ctx).BiasGrad(ctx, dy, dbias);
}

}  // namespace trident::ops
