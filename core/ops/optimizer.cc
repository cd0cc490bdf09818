#include "core/ops/optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/reduction.h"
#include "core/ops/validate.h"

namespace trident::ops {

void AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
               const Tensor& exp_avg, const Tensor& exp_avg_sq, const AdamWOptions& options,
               WeightDecay decay) {
  internal::CheckContiguous(ctx, "AdamWStep", "param", param);
  internal::CheckContiguous(ctx, "AdamWStep", "grad", grad);
  internal::CheckContiguous(ctx, "AdamWStep", "exp_avg", exp_avg);
  internal::CheckContiguous(ctx, "AdamWStep", "exp_avg_sq", exp_avg_sq);
  internal::CheckSameShape("AdamWStep", "grad", grad, "param", param);
  internal::CheckSameShape("AdamWStep", "exp_avg", exp_avg, "param", param);
  internal::CheckSameShape("AdamWStep", "exp_avg_sq", exp_avg_sq, "param", param);
  TRIDENT_CHECK_GE(options.step, 1) << "ops::AdamWStep: step counts from 1";
  TRIDENT_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0 && options.beta2 >= 0.0 &&
                options.beta2 < 1.0)
      << "ops::AdamWStep: betas (" << options.beta1 << ", " << options.beta2
      << ") must be in [0, 1)";
  BackendFor(ctx).AdamWStep(ctx, param, grad, exp_avg, exp_avg_sq, options, decay);
}

double GlobalL2Norm(const ExecContext& ctx, absl::Span<const Tensor> tensors) {
  double sum = 0.0;
  for (const Tensor& t : tensors) sum += SumOfSquares(ctx, t);
  return std::sqrt(sum);
}

float ClipCoefficient(double total_norm, float max_norm) {
  TRIDENT_CHECK(max_norm > 0.0f) << "ClipCoefficient: max_norm " << max_norm << " must be > 0";
  return static_cast<float>(std::min(1.0, max_norm / (total_norm + 1e-6)));
}

}  // namespace trident::ops
