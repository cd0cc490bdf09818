// Bench-only: the CPU attention kernel as it was before the packed-tile
// rewrite of core/ops/cpu/attention.cc (issue 15), kept verbatim so that
// //core/ops:attention_bench measures the old and the new kernel in the same
// process. Nothing else may use it; the tests compare against
// attention_reference.h.

#include "core/ops/cpu/attention_previous.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/ops/cpu/blas.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// vec_math.h's MaxOf as it was (scalar code: GCC does not vectorise it), so
// the baseline stays the old kernel. max_i x[i] (n >= 1).
float PreviousMaxOf(const float* x, int64_t n) {
  float lanes[kLanes];
  for (int l = 0; l < kLanes; ++l) lanes[l] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] = lanes[l] > x[i + l] ? lanes[l] : x[i + l];
  }
  float m = lanes[0];
  for (int l = 1; l < kLanes; ++l) m = m > lanes[l] ? m : lanes[l];
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  return m;
}

// Query rows per tile: a GEMM of this many rows is efficient, and the skipped
// part of the diagonal tile stays small.
constexpr int64_t kQueryTile = 64;
// Key columns per tile: the scratch tiles (kQueryTile x kKeyTile floats, 64 KiB
// each) stay in L2. A multiple of kQueryTile, so every key tile that starts
// before a query tile ends starts at or before its first row: no row of a
// visited tile is fully masked.
constexpr int64_t kKeyTile = 256;
static_assert(kKeyTile % kQueryTile == 0);

// One head's Q, K, V (or their gradients) inside a [B, T, 3C] tensor.
template <typename T>
struct HeadPointers {
  T* q;
  T* k;
  T* v;
  int64_t ld;  // 3C
};

template <typename T>
HeadPointers<T> Head(T* qkv, int64_t b, int64_t h, int64_t seq, int64_t heads, int64_t head_dim) {
  const int64_t c = heads * head_dim;
  T* base = qkv + b * seq * 3 * c + h * head_dim;
  return {base, base + c, base + 2 * c, 3 * c};
}

// Columns [j0, j0 + n) of row i that are not in the future (j <= i), n >= 1.
inline int64_t CausalWidth(int64_t i, int64_t j0, int64_t tile_cols) {
  return std::min(tile_cols, i - j0 + 1);
}

// Per-thread scratch tiles, reused across calls (no allocation in the steady
// state).
float* ScratchTile(std::vector<float>& v) {
  if (v.size() < static_cast<size_t>(kQueryTile * kKeyTile)) v.resize(kQueryTile * kKeyTile);
  return v.data();
}

}  // namespace

void PreviousAttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                                      const Tensor& out, const Tensor& lse) {
  internal::CheckFloat32(ctx, "PreviousAttentionForward", {{"qkv", qkv}, {"out", out}, {"lse", lse}});
  const int64_t batch = qkv.dim(0), seq = qkv.dim(1), heads = num_heads;
  const int64_t head_dim = qkv.dim(2) / (3 * heads);
  const int64_t c = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* pqkv = qkv.data<float>();
  float* pout = out.data<float>();
  float* plse = lse.data<float>();
  ctx.ParallelFor(batch * heads, 1, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> s_scratch;
    float* s = ScratchTile(s_scratch);
    float row_max[kQueryTile];
    double row_sum[kQueryTile];
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, h = task % heads;
      const HeadPointers<const float> p = Head(pqkv, b, h, seq, heads, head_dim);
      float* o = pout + b * seq * c + h * head_dim;
      float* task_lse = plse + task * seq;
      for (int64_t i0 = 0; i0 < seq; i0 += kQueryTile) {
        const int64_t i1 = std::min(seq, i0 + kQueryTile);
        const int64_t rows = i1 - i0;
        // When every key of these rows fits one tile (T <= kKeyTile: the CPU's
        // usual case), the probabilities are normalised before the P V
        // product, exactly as a kernel that stores them would; otherwise the
        // running output is rescaled per tile and divided at the end.
        const bool one_tile = i1 <= kKeyTile;
        for (int64_t j0 = 0; j0 < i1; j0 += kKeyTile) {
          const int64_t cols = std::min(i1, j0 + kKeyTile) - j0;
          Sgemm(Trans::kNo, Trans::kYes, rows, cols, head_dim, scale, p.q + i0 * p.ld, p.ld,
                p.k + j0 * p.ld, p.ld, 0.0f, s, kKeyTile);
          const bool first = j0 == 0;
          for (int64_t r = 0; r < rows; ++r) {
            float* srow = s + r * kKeyTile;
            const int64_t n = CausalWidth(i0 + r, j0, cols);
            const float tile_max = PreviousMaxOf(srow, n);
            const float m = first ? tile_max : std::max(row_max[r], tile_max);
            const double sum = ExpShiftSum(srow, n, m);
            std::fill(srow + n, srow + cols, 0.0f);
            if (one_tile) {
              const float inv = static_cast<float>(1.0 / sum);
              for (int64_t j = 0; j < n; ++j) srow[j] *= inv;
              row_sum[r] = sum;
            } else if (first) {
              row_sum[r] = sum;
            } else {
              // Rescale what earlier key tiles accumulated to the new maximum.
              const float correction = FastExp(row_max[r] - m);
              row_sum[r] = row_sum[r] * correction + sum;
              float* orow = o + (i0 + r) * c;
              for (int64_t e = 0; e < head_dim; ++e) orow[e] *= correction;
            }
            row_max[r] = m;
          }
          Sgemm(Trans::kNo, Trans::kNo, rows, head_dim, cols, 1.0f, s, kKeyTile, p.v + j0 * p.ld,
                p.ld, first ? 0.0f : 1.0f, o + i0 * c, c);
        }
        for (int64_t r = 0; r < rows; ++r) {
          if (!one_tile) {
            const float inv = static_cast<float>(1.0 / row_sum[r]);
            float* orow = o + (i0 + r) * c;
            for (int64_t e = 0; e < head_dim; ++e) orow[e] *= inv;
          }
          task_lse[i0 + r] = row_max[r] + static_cast<float>(std::log(row_sum[r]));
        }
      }
    }
  });
}

void PreviousAttentionBackward(const ExecContext& ctx, const Tensor& qkv,
                                       const Tensor& out, const Tensor& lse, const Tensor& dout,
                                       int num_heads, const Tensor& dqkv) {
  internal::CheckFloat32(
      ctx, "PreviousAttentionBackward",
      {{"qkv", qkv}, {"out", out}, {"lse", lse}, {"dout", dout}, {"dqkv", dqkv}});
  const int64_t batch = qkv.dim(0), seq = qkv.dim(1), heads = num_heads;
  const int64_t head_dim = qkv.dim(2) / (3 * heads);
  const int64_t c = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* pqkv = qkv.data<float>();
  const float* pout = out.data<float>();
  const float* plse = lse.data<float>();
  const float* pdout = dout.data<float>();
  float* pdqkv = dqkv.data<float>();
  ctx.ParallelFor(batch * heads, 1, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> p_scratch, ds_scratch;
    float* prob = ScratchTile(p_scratch);
    float* ds = ScratchTile(ds_scratch);
    float row_delta[kQueryTile];
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, h = task % heads;
      const HeadPointers<const float> p = Head(pqkv, b, h, seq, heads, head_dim);
      const HeadPointers<float> g = Head(pdqkv, b, h, seq, heads, head_dim);
      const float* o = pout + b * seq * c + h * head_dim;
      const float* d_o = pdout + b * seq * c + h * head_dim;
      const float* task_lse = plse + task * seq;
      // dK and dV accumulate over query tiles.
      for (int64_t j = 0; j < seq; ++j) {
        std::fill(g.k + j * g.ld, g.k + j * g.ld + head_dim, 0.0f);
        std::fill(g.v + j * g.ld, g.v + j * g.ld + head_dim, 0.0f);
      }
      for (int64_t i0 = 0; i0 < seq; i0 += kQueryTile) {
        const int64_t i1 = std::min(seq, i0 + kQueryTile);
        const int64_t rows = i1 - i0;
        for (int64_t r = 0; r < rows; ++r) {
          row_delta[r] = DotOf(d_o + (i0 + r) * c, o + (i0 + r) * c, head_dim);
        }
        for (int64_t j0 = 0; j0 < i1; j0 += kKeyTile) {
          const int64_t cols = std::min(i1, j0 + kKeyTile) - j0;
          Sgemm(Trans::kNo, Trans::kYes, rows, cols, head_dim, scale, p.q + i0 * p.ld, p.ld,
                p.k + j0 * p.ld, p.ld, 0.0f, prob, kKeyTile);
          Sgemm(Trans::kNo, Trans::kYes, rows, cols, head_dim, 1.0f, d_o + i0 * c, c,
                p.v + j0 * p.ld, p.ld, 0.0f, ds, kKeyTile);
          for (int64_t r = 0; r < rows; ++r) {
            float* prow = prob + r * kKeyTile;
            float* dsrow = ds + r * kKeyTile;
            const int64_t n = CausalWidth(i0 + r, j0, cols);
            const float row_lse = task_lse[i0 + r];
            const float delta = row_delta[r];
            for (int64_t j = 0; j < n; ++j) {
              prow[j] = FastExp(prow[j] - row_lse);
              dsrow[j] = prow[j] * (dsrow[j] - delta);
            }
            std::fill(prow + n, prow + cols, 0.0f);
            std::fill(dsrow + n, dsrow + cols, 0.0f);
          }
          Sgemm(Trans::kYes, Trans::kNo, cols, head_dim, rows, 1.0f, prob, kKeyTile, d_o + i0 * c,
                c, 1.0f, g.v + j0 * g.ld, g.ld);
          Sgemm(Trans::kYes, Trans::kNo, cols, head_dim, rows, scale, ds, kKeyTile,
                p.q + i0 * p.ld, p.ld, 1.0f, g.k + j0 * g.ld, g.ld);
          Sgemm(Trans::kNo, Trans::kNo, rows, head_dim, cols, scale, ds, kKeyTile,
                p.k + j0 * p.ld, p.ld, j0 == 0 ? 0.0f : 1.0f, g.q + i0 * g.ld, g.ld);
        }
      }
    }
  });
}

}  // namespace trident::ops::cpu
