#ifndef TRIDENT_CORE_OPS_CPU_BLAS_H_
#define TRIDENT_CORE_OPS_CPU_BLAS_H_

// Thin wrappers over OpenBLAS's cblas_sgemm (row-major) for the CPU kernels.

#include <cstdint>

#include "absl/functional/function_ref.h"

#include "core/exec_context.h"
#include "core/ops/types.h"

namespace trident::ops::cpu {

// C[M, N] = alpha * op(A) op(B) + beta * C on the calling thread, for row-major
// matrices with leading dimensions lda, ldb, ldc. K == 0 gives beta * C (and
// zeros when beta == 0, never reading C). Pins OpenBLAS to one thread on first
// use (see core/exec_context.h).
void Sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

// One block of C [m, n] that one thread computes: rows [row0, row1) and
// columns [col0, col1); block `part` of `parts`.
struct GemmPart {
  int64_t part, parts;
  int64_t row0, row1, col0, col1;
};

// Splits C [m, n] (a product with inner dimension k) over the context's
// threads as ParallelSgemm does and runs fn(part) for each non-empty block on
// the thread that owns it; one block (the whole C) when the product is too
// small to split. Fused kernels compute a block with Sgemm, then their
// epilogue on the same block, in one pass over the threads.
void ForEachGemmPart(const ExecContext& ctx, int64_t m, int64_t n, int64_t k,
                     absl::FunctionRef<void(const GemmPart&)> fn);

// The same, split over the context's threads by blocks of rows of C (or of
// columns, when C is wider than tall). Each block is one single-threaded Sgemm.
void ParallelSgemm(const ExecContext& ctx, Trans trans_a, Trans trans_b, int64_t m, int64_t n,
                   int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                   float beta, float* c, int64_t ldc);

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_BLAS_H_
