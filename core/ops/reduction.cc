#include "core/ops/reduction.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {

double Sum(const ExecContext& ctx, const Tensor& x) {
  internal::CheckContiguous(ctx, "Sum", "x", x);
  return BackendFor(ctx).Sum(ctx, x);
}

double SumOfSquares(const ExecContext& ctx, const Tensor& x) {
  internal::CheckContiguous(ctx, "SumOfSquares", "x", x);
  return BackendFor(ctx).SumOfSquares(ctx, x);
}

namespace {

void CheckEachContiguous(const ExecContext& ctx, const char* op,
                         absl::Span<const Tensor> tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string name = absl::StrCat("tensors[", i, "]");
    internal::CheckContiguous(ctx, op, name.c_str(), tensors[i]);
  }
}

}  // namespace

double MultiTensorSum(const ExecContext& ctx, absl::Span<const Tensor> tensors) {
  CheckEachContiguous(ctx, "MultiTensorSum", tensors);
  return BackendFor(ctx).MultiTensorSum(ctx, tensors);
}

double MultiTensorSumOfSquares(const ExecContext& ctx, absl::Span<const Tensor> tensors) {
  CheckEachContiguous(ctx, "MultiTensorSumOfSquares", tensors);
  return BackendFor(ctx).MultiTensorSumOfSquares(ctx, tensors);
}

}  // namespace trident::ops
