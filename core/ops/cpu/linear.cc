// CpuBackendImpl: LinearForward, LinearWeightGrad (core/ops/linear.h).
//
// Each thread computes its block of the product with one single-threaded
// Sgemm (the split of ParallelSgemm, ForEachGemmPart) and applies the
// epilogue to that block right after, in the same parallel region:
//   forward:      the bias is written into the block and the GEMM accumulates
//                 onto it (beta = 1), then GELU reads `pre` and writes y;
//   weight grad:  the GEMM accumulates dW's block, and the thread sums the
//                 bias gradient over its share of the columns of dy.
// The arithmetic is that of BroadcastRows + Gemm (+ GeluForward) and of Gemm +
// BiasGrad, so results are bitwise the same as the unfused ops.

#include <algorithm>
#include <cstring>

#include "core/ops/cpu/blas.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {

void CpuBackendImpl::LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                                   const Tensor& bias, LinearEpilogue epilogue, const Tensor& y,
                                   const Tensor& pre) const {
  const bool gelu = epilogue == LinearEpilogue::kBiasGelu;
  internal::CheckFloat32(ctx, "LinearForward",
                         {{"x", x}, {"weight", weight}, {"bias", bias}, {"y", y}});
  if (gelu) internal::CheckFloat32(ctx, "LinearForward", "pre", pre);
  const int64_t m = x.dim(0), k = x.dim(1), n = weight.dim(1);
  const float* px = x.data<float>();
  const float* pw = weight.data<float>();
  const float* pb = bias.data<float>();
  float* py = y.data<float>();
  float* product = gelu ? pre.data<float>() : py;  // where x W + b goes
  ForEachGemmPart(ctx, m, n, k, [&](const GemmPart& part) {
    const int64_t cols = part.col1 - part.col0;
    for (int64_t r = part.row0; r < part.row1; ++r) {
      std::memcpy(product + r * n + part.col0, pb + part.col0, cols * sizeof(float));
    }
    Sgemm(Trans::kNo, Trans::kNo, part.row1 - part.row0, cols, k, 1.0f, px + part.row0 * k, k,
          pw + part.col0, n, 1.0f, product + part.row0 * n + part.col0, n);
    if (!gelu) return;
    for (int64_t r = part.row0; r < part.row1; ++r) {
      const float* in = product + r * n + part.col0;
      float* out = py + r * n + part.col0;
      for (int64_t c = 0; c < cols; ++c) out[c] = Gelu(in[c]);
    }
  });
}

void CpuBackendImpl::LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                      const Tensor& dweight, const Tensor& dbias) const {
  internal::CheckFloat32(ctx, "LinearWeightGrad",
                         {{"x", x}, {"dy", dy}, {"dweight", dweight}, {"dbias", dbias}});
  const int64_t rows = x.dim(0), k = x.dim(1), n = dy.dim(1);
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  float* pdw = dweight.data<float>();
  float* pdb = dbias.data<float>();
  // dW [k, n] += x^T dy: a product with inner dimension `rows`.
  ForEachGemmPart(ctx, k, n, rows, [&](const GemmPart& part) {
    Sgemm(Trans::kYes, Trans::kNo, part.row1 - part.row0, part.col1 - part.col0, rows, 1.0f,
          px + part.row0, k, pdy + part.col0, n, 1.0f, pdw + part.row0 * n + part.col0, n);
    // The bias gradient's columns: this block's, when dW is split by columns;
    // otherwise an equal share of all n by the part's index.
    int64_t c0 = part.col0, c1 = part.col1;
    if (c1 - c0 == n) {
      c0 = n * part.part / part.parts;
      c1 = n * (part.part + 1) / part.parts;
    }
    AddColumnSums(pdy, rows, n, c0, c1, pdb + c0);
  });
}

}  // namespace trident::ops::cpu
