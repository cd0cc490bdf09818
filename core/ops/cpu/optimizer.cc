// CpuBackendImpl: AdamWStep.

#include <cmath>

#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// The per-element factors of one update, rounded to float.
struct AdamWScalars {
  float step_size, bias_correction2_sqrt, decay_factor;
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, grad_scale;
};

// Elements [begin, end). The factors come in by value, so they are locals of
// the loop: when the loop read them as members of a closure in memory (which
// is what ParallelFor's inline single-thread path gives), GCC had to assume the
// float stores to p, m, v might overwrite them, reloaded them every iteration
// and did not vectorise: one thread was 13x slower than two (ops_bench).
inline void AdamWUpdate(const AdamWScalars k, float* p, const float* g, float* m, float* v,
                        int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i] * k.grad_scale;
    const float mi = m[i] * k.beta1 + k.one_minus_beta1 * gi;
    const float vi = v[i] * k.beta2 + k.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / k.bias_correction2_sqrt + k.eps;
    p[i] = p[i] * k.decay_factor - k.step_size * (mi / denom);
  }
}

}  // namespace

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
  AdamWScalars k;
  k.step_size = step_size;
  k.bias_correction2_sqrt = bias_correction2_sqrt;
  k.decay_factor = decay_factor;
  k.beta1 = static_cast<float>(options.beta1);
  k.beta2 = static_cast<float>(options.beta2);
  k.one_minus_beta1 = static_cast<float>(1.0 - options.beta1);
  k.one_minus_beta2 = static_cast<float>(1.0 - options.beta2);
  k.eps = static_cast<float>(options.epsilon);
  k.grad_scale = options.grad_scale;
  float* p = param.data<float>();
  const float* g = grad.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  // Captured by value: with pointers behind the closure GCC does not vectorise.
  ctx.ParallelFor(param.numel(), kElementwiseGrain,
                  [=](int64_t b, int64_t e) { AdamWUpdate(k, p, g, m, v, b, e); });
}

}  // namespace trident::ops::cpu
