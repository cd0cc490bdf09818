#include "core/ops/cpu/blas.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <mutex>

#include "core/check.h"

namespace trident::ops::cpu {
namespace {

void PinOpenBlasToOneThread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

CBLAS_TRANSPOSE ToCblas(Trans t) { return t == Trans::kYes ? CblasTrans : CblasNoTrans; }

blasint ToBlasInt(int64_t v, const char* what) {
  TRIDENT_CHECK(v >= 0 && v <= std::numeric_limits<blasint>::max())
      << "Sgemm: " << what << " = " << v << " does not fit OpenBLAS's integer type";
  return static_cast<blasint>(v);
}

// Below this many multiply-adds a GEMM is not worth splitting over threads.
constexpr int64_t kMinParallelFlops = int64_t{1} << 21;
// Block boundaries are rounded to this many rows/columns (OpenBLAS's kernels
// work on 16x4 / 8x8 tiles; ragged blocks waste their edges).
constexpr int64_t kBlockAlign = 16;

}  // namespace

void Sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) {
      float* row = c + i * ldc;
      if (beta == 0.0f) {
        std::fill(row, row + n, 0.0f);
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] *= beta;
      }
    }
    return;
  }
  PinOpenBlasToOneThread();
  cblas_sgemm(CblasRowMajor, ToCblas(trans_a), ToCblas(trans_b), ToBlasInt(m, "M"),
              ToBlasInt(n, "N"), ToBlasInt(k, "K"), alpha, a, ToBlasInt(lda, "lda"), b,
              ToBlasInt(ldb, "ldb"), beta, c, ToBlasInt(ldc, "ldc"));
}

void ForEachGemmPart(const ExecContext& ctx, int64_t m, int64_t n, int64_t k,
                     absl::FunctionRef<void(const GemmPart&)> fn) {
  const int threads = ctx.num_threads();
  const bool split_rows = m >= n;
  const int64_t extent = split_rows ? m : n;
  const int64_t parts = std::min<int64_t>(threads, std::max<int64_t>(1, extent / kBlockAlign));
  if (parts <= 1 || m * n * k < kMinParallelFlops) {
    if (m > 0 && n > 0) fn(GemmPart{0, 1, 0, m, 0, n});
    return;
  }
  // Boundaries of part p, rounded to kBlockAlign; the last part takes the rest.
  auto boundary = [&](int64_t p) {
    if (p >= parts) return extent;
    return std::min(extent, (extent * p / parts) / kBlockAlign * kBlockAlign);
  };
  ctx.ParallelFor(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      // Every part runs, even an empty one: a fused epilogue may give each
      // part a share of other work by its index.
      const int64_t begin = boundary(p), end = boundary(p + 1);
      fn(split_rows ? GemmPart{p, parts, begin, end, 0, n} : GemmPart{p, parts, 0, m, begin, end});
    }
  });
}

void ParallelSgemm(const ExecContext& ctx, Trans trans_a, Trans trans_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                   float beta, float* c, int64_t ldc) {
  ForEachGemmPart(ctx, m, n, k, [&](const GemmPart& part) {
    // Rows [row0, row1) of op(A) and columns [col0, col1) of op(B) and of C.
    const float* a_part = trans_a == Trans::kNo ? a + part.row0 * lda : a + part.row0;
    const float* b_part = trans_b == Trans::kNo ? b + part.col0 : b + part.col0 * ldb;
    Sgemm(trans_a, trans_b, part.row1 - part.row0, part.col1 - part.col0, k, alpha, a_part, lda,
          b_part, ldb, beta, c + part.row0 * ldc + part.col0, ldc);
  });
}

}  // namespace trident::ops::cpu
