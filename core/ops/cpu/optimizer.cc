// CpuBackendImpl: AdamWStep.

#include <cmath>

#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {

void CpuBackendImpl::AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                               const Tensor& exp_avg, const Tensor& exp_avg_sq,
                               const AdamWOptions& options, WeightDecay decay) const {
  internal::CheckFloat32(
      ctx, "AdamWStep",
      {{"param", param}, {"grad", grad}, {"exp_avg", exp_avg}, {"exp_avg_sq", exp_avg_sq}});
  // Scalars in double, each rounded to float once, as PyTorch's Python-side
  // scalars are.
  const double step = static_cast<double>(options.step);
  const double bias_correction1 = 1.0 - std::pow(options.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(options.beta2, step);
  const float step_size = static_cast<float>(options.learning_rate / bias_correction1);
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float decay_factor =
      decay == WeightDecay::kApply
          ? static_cast<float>(1.0 - options.learning_rate * options.weight_decay)
          : 1.0f;
  const float beta1 = static_cast<float>(options.beta1);
  const float beta2 = static_cast<float>(options.beta2);
  const float one_minus_beta1 = static_cast<float>(1.0 - options.beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - options.beta2);
  const float eps = static_cast<float>(options.epsilon);
  const float grad_scale = options.grad_scale;
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  // Captured by value: with pointers behind the closure GCC does not vectorise.
  ctx.ParallelFor(param.numel(), kElementwiseGrain, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float gi = g[i] * grad_scale;
      const float mi = m[i] * beta1 + one_minus_beta1 * gi;
      const float vi = v[i] * beta2 + one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
      p[i] = p[i] * decay_factor - step_size * (mi / denom);
    }
  });
}

}  // namespace trident::ops::cpu
