#include "core/ops/layer_norm.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckContiguous;

// Checks x ([rows, C]-like), a [C] parameter-shaped tensor, and the row stats;
// returns the number of rows.
int64_t CheckLayerNormArgs(const ExecContext& ctx, const char* op, const Tensor& x,
                           const char* vec_name, const Tensor& vec, const Tensor& mean,
                           const Tensor& rstd) {
  CheckContiguous(ctx, op, "x", x);
  CheckContiguous(ctx, op, vec_name, vec);
  CheckContiguous(ctx, op, "mean", mean);
  CheckContiguous(ctx, op, "rstd", rstd);
  TRIDENT_CHECK(x.ndim() >= 1 && x.dim(-1) > 0)
      << "ops::" << op << ": x is " << x.DebugString() << " but needs a non-empty last dim";
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  internal::CheckShape(op, vec_name, vec, {cols});
  internal::CheckNumel(op, "mean", mean, rows);
  internal::CheckNumel(op, "rstd", rstd, rows);
  return rows;
}

}  // namespace

void LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                      const Tensor& beta, float epsilon, const Tensor& y, const Tensor& mean,
                      const Tensor& rstd) {
  CheckLayerNormArgs(ctx, "LayerNormForward", x, "gamma", gamma, mean, rstd);
  CheckContiguous(ctx, "LayerNormForward", "beta", beta);
  CheckContiguous(ctx, "LayerNormForward", "y", y);
  internal::CheckSameShape("LayerNormForward", "beta", beta, "gamma", gamma);
  internal::CheckSameShape("LayerNormForward", "y", y, "x", x);
  TRIDENT_CHECK(epsilon >= 0.0f) << "ops::LayerNormForward: epsilon " << epsilon << " < 0";
  BackendFor(ctx).LayerNormForward(ctx, x, gamma, beta, epsilon, y, mean, rstd);
}

void LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                            const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                            const Tensor& dx) {
  CheckLayerNormArgs(ctx, "LayerNormBackwardInput", x, "gamma", gamma, mean, rstd);
  CheckContiguous(ctx, "LayerNormBackwardInput", "dy", dy);
  CheckContiguous(ctx, "LayerNormBackwardInput", "dx", dx);
  internal::CheckSameShape("LayerNormBackwardInput", "dy", dy, "x", x);
  internal::CheckSameShape("LayerNormBackwardInput", "dx", dx, "x", x);
  BackendFor(ctx).LayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, dx);
}

void AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                         const Tensor& gamma, const Tensor& beta, float epsilon, const Tensor& sum,
                         const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  constexpr const char* kOp = "AddLayerNormForward";
  CheckLayerNormArgs(ctx, kOp, a, "gamma", gamma, mean, rstd);
  CheckContiguous(ctx, kOp, "b", b);
  CheckContiguous(ctx, kOp, "beta", beta);
  CheckContiguous(ctx, kOp, "sum", sum);
  CheckContiguous(ctx, kOp, "y", y);
  internal::CheckSameShape(kOp, "b", b, "a", a);
  internal::CheckSameShape(kOp, "beta", beta, "gamma", gamma);
  internal::CheckSameShape(kOp, "sum", sum, "a", a);
  internal::CheckSameShape(kOp, "y", y, "a", a);
  TRIDENT_CHECK(y.raw_data() != sum.raw_data())
      << "ops::AddLayerNormForward: y and sum must be different buffers";
  TRIDENT_CHECK(epsilon >= 0.0f) << "ops::AddLayerNormForward: epsilon " << epsilon << " < 0";
  BackendFor(ctx).AddLayerNormForward(ctx, a, b, gamma, beta, epsilon, sum, y, mean, rstd);
}

void AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                               const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                               const Tensor& d_residual, const Tensor& dx) {
  constexpr const char* kOp = "AddLayerNormBackwardInput";
  CheckLayerNormArgs(ctx, kOp, x, "gamma", gamma, mean, rstd);
  CheckContiguous(ctx, kOp, "dy", dy);
  CheckContiguous(ctx, kOp, "d_residual", d_residual);
  CheckContiguous(ctx, kOp, "dx", dx);
  internal::CheckSameShape(kOp, "dy", dy, "x", x);
  internal::CheckSameShape(kOp, "d_residual", d_residual, "x", x);
  internal::CheckSameShape(kOp, "dx", dx, "x", x);
  BackendFor(ctx).AddLayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, d_residual, dx);
}

void LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& mean,
                              const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                              const Tensor& dbeta) {
  CheckLayerNormArgs(ctx, "LayerNormBackwardWeights", x, "dgamma", dgamma, mean, rstd);
  CheckContiguous(ctx, "LayerNormBackwardWeights", "dy", dy);
  CheckContiguous(ctx, "LayerNormBackwardWeights", "dbeta", dbeta);
  internal::CheckSameShape("LayerNormBackwardWeights", "dy", dy, "x", x);
  internal::CheckSameShape("LayerNormBackwardWeights", "dbeta", dbeta, "dgamma", dgamma);
  BackendFor(ctx).LayerNormBackwardWeights(ctx, x, mean, rstd, dy, dgamma, dbeta);
}

}  // namespace trident::ops
