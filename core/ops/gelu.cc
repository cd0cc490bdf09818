#include "core/ops/gelu.h"

#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {

void GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) {
  internal::CheckContiguous(ctx, "GeluForward", "x", x);
  internal::CheckContiguous(ctx, "GeluForward", "y", y);
  internal::CheckSameShape("GeluForward", "y", y, "x", x);
  BackendFor(ctx).GeluForward(ctx, x, y);
}

void GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  internal::CheckContiguous(ctx, "GeluBackward", "x", x);
  internal::CheckContiguous(ctx, "GeluBackward", "dy", dy);
  internal::CheckContiguous(ctx, "GeluBackward", "dx", dx);
  internal::CheckSameShape("GeluBackward", "dy", dy, "x", x);
  internal::CheckSameShape("GeluBackward", "dx", dx, "x", x);
  BackendFor(ctx).GeluBackward(ctx, x, dy, dx);
}

}  // namespace trident::ops
