// CpuBackendImpl: GeluForward, GeluBackward (the scalar functions are in
// vec_math.h, shared with the fused GEMM + bias + GELU of linear.cc).

#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {

void CpuBackendImpl::GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const {
  internal::CheckFloat32(ctx, "GeluForward", "x", x);
  internal::CheckFloat32(ctx, "GeluForward", "y", y);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  ctx.ParallelFor(x.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) py[i] = Gelu(px[i]);
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
    for (int64_t i = b; i < e; ++i) pdx[i] = pdy[i] * GeluDerivative(px[i]);
  });
}

}  // namespace trident::ops::cpu
