// CpuBackendImpl: AttentionForward, AttentionBackward, memory-efficient
// ("flash") form: nothing of size T x T is stored between the two.
//
// Per (batch b, head h), with T = seq, D = head_dim, C = heads * D and the head's
// Q, K, V read in place from qkv (row stride 3C). Query rows are taken in tiles
// of kQueryTile, key columns in tiles of kKeyTile; a (query, key) tile pair
// entirely above the diagonal is skipped, and on the diagonal only the columns
// j <= i of each row are computed.
//   forward, for each query tile i, running row max m and row sum l:
//     for each key tile j <= the diagonal:
//       S = scale * Q_i K_j^T                               (GEMM into scratch)
//       m' = max(m, rowmax S); P = e^(S - m'); l = l e^(m - m') + rowsum P
//       O_i = O_i e^(m - m') + P V_j                        (online softmax)
//     O_i /= l;  lse_i = m + log l
//   backward, with D_i = rowsum(dO_i * O_i), for each query tile i and key
//   tile j <= the diagonal:
//       P  = e^(scale * Q_i K_j^T - lse_i)                 (recomputed)
//       dS = P * (dO_i V_j^T - D_i)
//       dV_j += P^T dO_i;  dK_j += scale dS^T Q_i;  dQ_i += scale dS K_j
// Each (batch, head) is one task on one thread, so the accumulation order, and
// the result, do not depend on the thread count.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/ops/cpu/blas.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

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

void CpuBackendImpl::AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                                      const Tensor& out, const Tensor& lse) const {
  internal::CheckFloat32(ctx, "AttentionForward", {{"qkv", qkv}, {"out", out}, {"lse", lse}});
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
            const float tile_max = MaxOf(srow, n);
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

void CpuBackendImpl::AttentionBackward(const ExecContext& ctx, const Tensor& qkv,
                                       const Tensor& out, const Tensor& lse, const Tensor& dout,
                                       int num_heads, const Tensor& dqkv) const {
  internal::CheckFloat32(
      ctx, "AttentionBackward",
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
            // One pass over the whole tile row, the future columns set to 0:
            // the trip count is a multiple of the vector width (unlike n).
            for (int64_t j = 0; j < cols; ++j) {
              const float prob_j = j < n ? FastExp(prow[j] - row_lse) : 0.0f;
              prow[j] = prob_j;
              dsrow[j] = prob_j * (dsrow[j] - delta);
            }
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
