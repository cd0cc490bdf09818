// CpuBackendImpl: LayerNormForward, LayerNormBackwardInput, LayerNormBackwardWeights,
// and the residual-fused AddLayerNormForward, AddLayerNormBackwardInput (the
// same row kernels with the add folded into the pass over the row).

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// sum_j (x[j] - mean)^2 in float lanes.
inline float SquaredDeviation(const float* x, int64_t n, float mean) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[i + l] - mean;
      lanes[l] += d * d;
    }
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += (x[i] - mean) * (x[i] - mean);
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total + tail;
}

// y = LayerNorm(x) of one row; returns its mean and rstd.
inline void NormalizeRow(const float* xr, int64_t cols, const float* pg, const float* pb,
                         float epsilon, float* yr, float* mean, float* rstd) {
  const float inv_cols = 1.0f / static_cast<float>(cols);
  const float m = SumOf(xr, cols) * inv_cols;
  const float var = SquaredDeviation(xr, cols, m) * inv_cols;
  const float s = 1.0f / std::sqrt(var + epsilon);
  for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - m) * s * pg[c] + pb[c];
  *mean = m;
  *rstd = s;
}

// dx of one row from dy (with mean m and rstd s), plus `add` when given
// (the gradient reaching the row through the residual path).
inline void LayerNormGradRow(const float* xr, const float* dyr, const float* pg, float m, float s,
                             int64_t cols, const float* add, float* dxr) {
  const float inv_cols = 1.0f / static_cast<float>(cols);
  // With g = dy * gamma and xhat = (x - m) * s:
  //   dx = s * (g - mean(g) - xhat * mean(g * xhat)).
  float sum_g[kLanes] = {}, sum_gx[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= cols; c += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float g = dyr[c + l] * pg[c + l];
      sum_g[l] += g;
      sum_gx[l] += g * (xr[c + l] - m) * s;
    }
  }
  float tail_g = 0.0f, tail_gx = 0.0f;
  for (; c < cols; ++c) {
    const float g = dyr[c] * pg[c];
    tail_g += g;
    tail_gx += g * (xr[c] - m) * s;
  }
  float total_g = 0.0f, total_gx = 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    total_g += sum_g[l];
    total_gx += sum_gx[l];
  }
  const float mean_g = (total_g + tail_g) * inv_cols;
  const float mean_gx = (total_gx + tail_gx) * inv_cols;
  if (add == nullptr) {
    for (int64_t k = 0; k < cols; ++k) {
      const float xhat = (xr[k] - m) * s;
      dxr[k] = s * (dyr[k] * pg[k] - mean_g - xhat * mean_gx);
    }
  } else {
    // The normalised part is rounded to float (stored) before the add, as the
    // unfused LayerNormBackwardInput + Add round it: a single expression would
    // let the compiler contract it into an FMA and change the last bit. The
    // row buffer also lets dx alias `add`.
    thread_local std::vector<float> through_norm;
    if (static_cast<int64_t>(through_norm.size()) < cols) through_norm.resize(cols);
    float* t = through_norm.data();
    for (int64_t k = 0; k < cols; ++k) {
      const float xhat = (xr[k] - m) * s;
      t[k] = s * (dyr[k] * pg[k] - mean_g - xhat * mean_gx);
    }
    for (int64_t k = 0; k < cols; ++k) dxr[k] = t[k] + add[k];
  }
}

}  // namespace

void CpuBackendImpl::LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                      const Tensor& beta, float epsilon, const Tensor& y,
                                      const Tensor& mean, const Tensor& rstd) const {
  internal::CheckFloat32(
      ctx, "LayerNormForward",
      {{"x", x}, {"gamma", gamma}, {"beta", beta}, {"y", y}, {"mean", mean}, {"rstd", rstd}});
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  const float* pb = beta.data<float>();
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      NormalizeRow(px + r * cols, cols, pg, pb, epsilon, py + r * cols, pm + r, pr + r);
    }
  });
}

void CpuBackendImpl::AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                         const Tensor& gamma, const Tensor& beta, float epsilon,
                                         const Tensor& sum, const Tensor& y, const Tensor& mean,
                                         const Tensor& rstd) const {
  internal::CheckFloat32(ctx, "AddLayerNormForward",
                         {{"a", a},
                          {"b", b},
                          {"gamma", gamma},
                          {"beta", beta},
                          {"sum", sum},
                          {"y", y},
                          {"mean", mean},
                          {"rstd", rstd}});
  const int64_t cols = a.dim(-1);
  const int64_t rows = a.numel() / cols;
  const float* pa = a.data<float>();
  const float* pb_in = b.data<float>();
  const float* pg = gamma.data<float>();
  const float* pbeta = beta.data<float>();
  float* ps = sum.data<float>();
  float* py = y.data<float>();
  float* pm = mean.data<float>();
  float* pr = rstd.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* ar = pa + r * cols;
      const float* br = pb_in + r * cols;
      float* sr = ps + r * cols;
      for (int64_t c = 0; c < cols; ++c) sr[c] = ar[c] + br[c];
      NormalizeRow(sr, cols, pg, pbeta, epsilon, py + r * cols, pm + r, pr + r);
    }
  });
}

void CpuBackendImpl::LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                            const Tensor& gamma, const Tensor& mean,
                                            const Tensor& rstd, const Tensor& dy,
                                            const Tensor& dx) const {
  internal::CheckFloat32(
      ctx, "LayerNormBackwardInput",
      {{"x", x}, {"gamma", gamma}, {"mean", mean}, {"rstd", rstd}, {"dy", dy}, {"dx", dx}});
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      LayerNormGradRow(px + r * cols, pdy + r * cols, pg, pm[r], pr[r], cols, nullptr,
                       pdx + r * cols);
    }
  });
}

void CpuBackendImpl::AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                               const Tensor& gamma, const Tensor& mean,
                                               const Tensor& rstd, const Tensor& dy,
                                               const Tensor& d_residual, const Tensor& dx) const {
  internal::CheckFloat32(ctx, "AddLayerNormBackwardInput",
                         {{"x", x},
                          {"gamma", gamma},
                          {"mean", mean},
                          {"rstd", rstd},
                          {"dy", dy},
                          {"d_residual", d_residual},
                          {"dx", dx}});
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  const float* px = x.data<float>();
  const float* pg = gamma.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  const float* pdy = dy.data<float>();
  const float* pres = d_residual.data<float>();
  float* pdx = dx.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      LayerNormGradRow(px + r * cols, pdy + r * cols, pg, pm[r], pr[r], cols, pres + r * cols,
                       pdx + r * cols);
    }
  });
}

void CpuBackendImpl::LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x,
                                              const Tensor& mean, const Tensor& rstd,
                                              const Tensor& dy, const Tensor& dgamma,
                                              const Tensor& dbeta) const {
  internal::CheckFloat32(
      ctx, "LayerNormBackwardWeights",
      {{"x", x}, {"mean", mean}, {"rstd", rstd}, {"dy", dy}, {"dgamma", dgamma}, {"dbeta", dbeta}});
  const int64_t cols = x.dim(-1);
  const int64_t rows = x.numel() / cols;
  const float* px = x.data<float>();
  const float* pm = mean.data<float>();
  const float* pr = rstd.data<float>();
  const float* pdy = dy.data<float>();
  float* pdg = dgamma.data<float>();
  float* pdb = dbeta.data<float>();
  const int64_t tiles = CeilDiv(cols, kColumnTile);
  ctx.ParallelFor(tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c0 = t * kColumnTile;
      const int64_t width = std::min(kColumnTile, cols - c0);
      double acc_g[kColumnTile] = {}, acc_b[kColumnTile] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = px + r * cols + c0;
        const float* dyr = pdy + r * cols + c0;
        const float m = pm[r], s = pr[r];
        for (int64_t c = 0; c < width; ++c) {
          acc_g[c] += dyr[c] * ((xr[c] - m) * s);
          acc_b[c] += dyr[c];
        }
      }
      for (int64_t c = 0; c < width; ++c) {
        pdg[c0 + c] += static_cast<float>(acc_g[c]);
        pdb[c0 + c] += static_cast<float>(acc_b[c]);
      }
    }
  });
}

}  // namespace trident::ops::cpu
