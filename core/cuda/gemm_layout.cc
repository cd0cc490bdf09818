#include "core/cuda/gemm_layout.h"

#include "absl/strings/str_format.h"

namespace trident::cuda {

LtGemmLayout GemmLayout(const RowMajorGemm& gemm) {
  LtGemmLayout layout;
  layout.m = gemm.n;
  layout.n = gemm.m;
  layout.k = gemm.k;
  layout.batch = gemm.batch;
  // Stored B is [k, n] (or [n, k] when transposed); read column-major it is
  // its transpose, so op(A') = op(B)^T [n, k] needs a transpose exactly when
  // B is stored transposed. Likewise for B' = A.
  layout.a = {.rows = gemm.transpose_b ? gemm.k : gemm.n,
              .cols = gemm.transpose_b ? gemm.n : gemm.k,
              .ld = gemm.row_stride_b,
              .transpose = gemm.transpose_b,
              .batch_stride = gemm.batch_stride_b};
  layout.b = {.rows = gemm.transpose_a ? gemm.m : gemm.k,
              .cols = gemm.transpose_a ? gemm.k : gemm.m,
              .ld = gemm.row_stride_a,
              .transpose = gemm.transpose_a,
              .batch_stride = gemm.batch_stride_a};
  layout.d = {.rows = gemm.n,
              .cols = gemm.m,
              .ld = gemm.row_stride_c,
              .transpose = false,
              .batch_stride = gemm.batch_stride_c};
  return layout;
}

LtGemmLayout ForwardLayout(int64_t tokens, int64_t in_features, int64_t out_features) {
  // y [tokens, out] = x [tokens, in] W [in, out].
  return GemmLayout({.m = tokens,
                     .n = out_features,
                     .k = in_features,
                     .row_stride_a = in_features,
                     .row_stride_b = out_features,
                     .row_stride_c = out_features});
}

LtGemmLayout WeightGradLayout(int64_t tokens, int64_t in_features, int64_t out_features) {
  // dW [in, out] = x^T [in, tokens] dy [tokens, out].
  return GemmLayout({.m = in_features,
                     .n = out_features,
                     .k = tokens,
                     .transpose_a = true,
                     .row_stride_a = in_features,
                     .row_stride_b = out_features,
                     .row_stride_c = out_features});
}

namespace {

std::string OperandToString(const LtOperand& operand) {
  return absl::StrFormat("[%d x %d, ld %d, %s]", operand.rows, operand.cols, operand.ld,
                         operand.transpose ? "T" : "N");
}

}  // namespace

std::string LayoutToString(const LtGemmLayout& layout) {
  std::string text = absl::StrFormat("m=%d n=%d k=%d A%s B%s D%s", layout.m, layout.n, layout.k,
                                     OperandToString(layout.a), OperandToString(layout.b),
                                     OperandToString(layout.d));
  if (layout.batch != 1) {
    absl::StrAppendFormat(&text, " batch=%d strides %d/%d/%d", layout.batch, layout.a.batch_stride,
                          layout.b.batch_stride, layout.d.batch_stride);
  }
  return text;
}

}  // namespace trident::cuda
