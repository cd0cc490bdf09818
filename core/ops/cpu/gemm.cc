// CpuBackendImpl: Gemm, BatchedGemm.

#include <algorithm>

#include "core/ops/cpu/blas.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// Leading dimension of a stored matrix given as the last two dims of x.
int64_t LeadingDim(const Tensor& x) {
  return x.dim(-2) <= 1 ? std::max<int64_t>(x.dim(-1), 1) : x.stride(-2);
}

int64_t OpRows(const Tensor& x, Trans t) { return t == Trans::kNo ? x.dim(-2) : x.dim(-1); }
int64_t OpCols(const Tensor& x, Trans t) { return t == Trans::kNo ? x.dim(-1) : x.dim(-2); }

}  // namespace

void CpuBackendImpl::Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                          Trans trans_b, const Tensor& c, float alpha, float beta) const {
  internal::CheckFloat32(ctx, "Gemm", "a", a);
  internal::CheckFloat32(ctx, "Gemm", "b", b);
  internal::CheckFloat32(ctx, "Gemm", "c", c);
  ParallelSgemm(ctx, trans_a, trans_b, OpRows(a, trans_a), OpCols(b, trans_b), OpCols(a, trans_a),
                alpha, a.data<float>(), LeadingDim(a), b.data<float>(), LeadingDim(b), beta,
                c.data<float>(), LeadingDim(c));
}

void CpuBackendImpl::BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a,
                                 const Tensor& b, Trans trans_b, const Tensor& c, float alpha,
                                 float beta) const {
  internal::CheckFloat32(ctx, "BatchedGemm", "a", a);
  internal::CheckFloat32(ctx, "BatchedGemm", "b", b);
  internal::CheckFloat32(ctx, "BatchedGemm", "c", c);
  const int64_t batch = c.dim(0);
  const int64_t m = OpRows(a, trans_a), n = OpCols(b, trans_b), k = OpCols(a, trans_a);
  const int64_t lda = LeadingDim(a), ldb = LeadingDim(b), ldc = LeadingDim(c);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = c.data<float>();
  const int64_t sa = a.stride(0), sb = b.stride(0), sc = c.stride(0);
  auto run = [&](int64_t i) {
    // Inside a parallel batch loop ParallelSgemm runs inline (no nested fan-out);
    // with fewer entries than threads it splits each entry instead.
    ParallelSgemm(ctx, trans_a, trans_b, m, n, k, alpha, pa + i * sa, lda, pb + i * sb, ldb, beta,
                  pc + i * sc, ldc);
  };
  if (batch >= ctx.num_threads()) {
    ctx.ParallelFor(batch, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) run(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) run(i);
  }
}

}  // namespace trident::ops::cpu
