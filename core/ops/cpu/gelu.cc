// CpuBackendImpl: GeluForward, GeluBackward.
//
// 0.5 (1 + tanh(u)) = sigmoid(2u), so GELU(x) = x * sigmoid(2u) with
// u = sqrt(2/pi) (x + 0.044715 x^3). The sigmoid form has no cancellation near
// u = 0 (unlike 1 + tanh computed from exp) and vectorises through FastExp.

#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

}  // namespace

void CpuBackendImpl::GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const {
  internal::CheckFloat32(ctx, "GeluForward", "x", x);
  internal::CheckFloat32(ctx, "GeluForward", "y", y);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  ctx.ParallelFor(x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = px[i];
      const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
      py[i] = v * FastSigmoid(2.0f * u);
    }
  });
}

void CpuBackendImpl::GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                  const Tensor& dx) const {
  internal::CheckFloat32(ctx, "GeluBackward", "x", x);
  internal::CheckFloat32(ctx, "GeluBackward", "dy", dy);
  internal::CheckFloat32(ctx, "GeluBackward", "dx", dx);
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  ctx.ParallelFor(x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float v = px[i];
      const float u = kSqrt2OverPi * (v + kCubic * v * v * v);
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * v * v);
      const float s = FastSigmoid(2.0f * u);
      // d/dx [x s(2u)] = s + x s (1 - s) 2 u'.
      pdx[i] = pdy[i] * (s + v * s * (1.0f - s) * 2.0f * du);
    }
  });
}

}  // namespace trident::ops::cpu
