#include "core/ops/reduction.h"

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

}  // namespace trident::ops
