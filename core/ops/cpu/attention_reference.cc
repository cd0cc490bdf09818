// The attention kernel that stored the probabilities (before the
// memory-efficient one in attention.cc), kept as a reference for the tests.
//
// Per (batch b, head h), with T = seq, D = head_dim, C = heads * D and the head's
// Q, K, V read in place from qkv (row stride 3C):
//   forward, for each block of query rows [i0, i1):
//     S[i0:i1, 0:i1] = scale * Q[i0:i1] K[0:i1]^T        (GEMM into probs)
//     P = causal softmax of each row (max-subtracted), zero above the diagonal
//     O[i0:i1] = P[i0:i1, 0:i1] V[0:i1]                   (GEMM into out)
//   backward:
//     dP = dO V^T, dS = P * (dP - rowsum(P * dP))         (row blocks, scratch)
//     dQ = scale * dS K;  dK = scale * dS^T Q;  dV = P^T dO (column blocks)
// Blocks skip the upper triangle, halving the GEMM work for long sequences.

#include "core/ops/cpu/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops/cpu/blas.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// Query rows per causal block: big enough for efficient GEMMs, small enough
// that the skipped upper triangle is most of the waste avoided.
constexpr int64_t kCausalBlock = 64;

// One head's Q, K, V (or their gradients) inside a [B, T, 3C] tensor.
template <typename T>
struct HeadPointers {
  T* q;
  T* k;
  T* v;
  int64_t ld_qkv;  // 3C
};

template <typename T>
HeadPointers<T> Head(T* qkv, int64_t b, int64_t h, int64_t seq, int64_t heads, int64_t head_dim) {
  const int64_t c = heads * head_dim;
  T* base = qkv + b * seq * 3 * c + h * head_dim;
  return {base, base + c, base + 2 * c, 3 * c};
}

// Row i of the scores holds valid entries [0, i]: softmax them in place and
// zero the rest of the row up to `width`.
inline void CausalSoftmaxRow(float* row, int64_t i, int64_t width) {
  const int64_t n = i + 1;
  const float m = MaxOf(row, n);
  const double sum = ExpShiftSum(row, n, m);
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
  std::fill(row + n, row + width, 0.0f);
}

}  // namespace

void ReferenceAttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                               const Tensor& out, const Tensor& probs) {
  internal::CheckFloat32(ctx, "AttentionForward", {{"qkv", qkv}, {"out", out}, {"probs", probs}});
  const int64_t batch = qkv.dim(0), seq = qkv.dim(1), heads = num_heads;
  const int64_t head_dim = qkv.dim(2) / (3 * heads);
  const int64_t c = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* pqkv = qkv.data<float>();
  float* pout = out.data<float>();
  float* pprobs = probs.data<float>();
  ctx.ParallelFor(batch * heads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, h = task % heads;
      const HeadPointers<const float> p = Head(pqkv, b, h, seq, heads, head_dim);
      float* o = pout + b * seq * c + h * head_dim;
      float* pr = pprobs + task * seq * seq;
      for (int64_t i0 = 0; i0 < seq; i0 += kCausalBlock) {
        const int64_t i1 = std::min(seq, i0 + kCausalBlock);
        Sgemm(Trans::kNo, Trans::kYes, i1 - i0, i1, head_dim, scale, p.q + i0 * p.ld_qkv, p.ld_qkv,
              p.k, p.ld_qkv, 0.0f, pr + i0 * seq, seq);
        for (int64_t i = i0; i < i1; ++i) CausalSoftmaxRow(pr + i * seq, i, seq);
        Sgemm(Trans::kNo, Trans::kNo, i1 - i0, head_dim, i1, 1.0f, pr + i0 * seq, seq, p.v,
              p.ld_qkv, 0.0f, o + i0 * c, c);
      }
    }
  });
}

void ReferenceAttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& probs,
                                const Tensor& dout, int num_heads, const Tensor& dqkv) {
  internal::CheckFloat32(ctx, "AttentionBackward",
                         {{"qkv", qkv}, {"probs", probs}, {"dout", dout}, {"dqkv", dqkv}});
  const int64_t batch = qkv.dim(0), seq = qkv.dim(1), heads = num_heads;
  const int64_t head_dim = qkv.dim(2) / (3 * heads);
  const int64_t c = heads * head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const float* pqkv = qkv.data<float>();
  const float* pprobs = probs.data<float>();
  const float* pdout = dout.data<float>();
  float* pdqkv = dqkv.data<float>();
  ctx.ParallelFor(batch * heads, 1, [&](int64_t t0, int64_t t1) {
    // dS of one head; kept per thread and reused across calls (no allocation
    // in the steady state).
    thread_local std::vector<float> scratch;
    if (static_cast<int64_t>(scratch.size()) < seq * seq) scratch.resize(seq * seq);
    float* ds = scratch.data();
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t b = task / heads, h = task % heads;
      const HeadPointers<const float> p = Head(pqkv, b, h, seq, heads, head_dim);
      const HeadPointers<float> g = Head(pdqkv, b, h, seq, heads, head_dim);
      float* dq = g.q;
      float* dk = g.k;
      float* dv = g.v;
      const float* d_o = pdout + b * seq * c + h * head_dim;
      const float* pr = pprobs + task * seq * seq;
      for (int64_t i0 = 0; i0 < seq; i0 += kCausalBlock) {
        const int64_t i1 = std::min(seq, i0 + kCausalBlock);
        // dP[i0:i1, 0:i1] = dO[i0:i1] V[0:i1]^T.
        Sgemm(Trans::kNo, Trans::kYes, i1 - i0, i1, head_dim, 1.0f, d_o + i0 * c, c, p.v, p.ld_qkv,
              0.0f, ds + i0 * seq, seq);
        for (int64_t i = i0; i < i1; ++i) {
          float* row = ds + i * seq;
          const float* prow = pr + i * seq;
          const int64_t n = i + 1;
          const float dot = DotOf(prow, row, n);
          for (int64_t j = 0; j < n; ++j) row[j] = prow[j] * (row[j] - dot);
          std::fill(row + n, row + i1, 0.0f);
        }
        // dQ[i0:i1] = scale * dS[i0:i1, 0:i1] K[0:i1].
        Sgemm(Trans::kNo, Trans::kNo, i1 - i0, head_dim, i1, scale, ds + i0 * seq, seq, p.k,
              p.ld_qkv, 0.0f, dq + i0 * g.ld_qkv, g.ld_qkv);
      }
      for (int64_t j0 = 0; j0 < seq; j0 += kCausalBlock) {
        const int64_t j1 = std::min(seq, j0 + kCausalBlock);
        // Keys [j0, j1) are attended by queries [j0, seq) only.
        // dK[j0:j1] = scale * dS[j0:seq, j0:j1]^T Q[j0:seq].
        Sgemm(Trans::kYes, Trans::kNo, j1 - j0, head_dim, seq - j0, scale, ds + j0 * seq + j0, seq,
              p.q + j0 * p.ld_qkv, p.ld_qkv, 0.0f, dk + j0 * g.ld_qkv, g.ld_qkv);
        // dV[j0:j1] = P[j0:seq, j0:j1]^T dO[j0:seq].
        Sgemm(Trans::kYes, Trans::kNo, j1 - j0, head_dim, seq - j0, 1.0f, pr + j0 * seq + j0, seq,
              d_o + j0 * c, c, 0.0f, dv + j0 * g.ld_qkv, g.ld_qkv);
      }
    }
  });
}

}  // namespace trident::ops::cpu
