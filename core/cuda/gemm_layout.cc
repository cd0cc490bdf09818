#include "core/cuda/gemm_layout.h"

#include "absl/strings/str_format.h"

namespace trident::cuda {

LtGemmLayout ForwardLayout(int64_t tokens, int64_t in_features, int64_t out_features) {
  LtGemmLayout layout;
  layout.m = out_features;
  layout.n = tokens;
  layout.k = in_features;
  layout.a = {.rows = out_features, .cols = in_features, .ld = out_features, .transpose = false};
  layout.b = {.rows = in_features, .cols = tokens, .ld = in_features, .transpose = false};
  layout.d = {.rows = out_features, .cols = tokens, .ld = out_features, .transpose = false};
  return layout;
}

LtGemmLayout WeightGradLayout(int64_t tokens, int64_t in_features, int64_t out_features) {
  LtGemmLayout layout;
  layout.m = out_features;
  layout.n = in_features;
  layout.k = tokens;
  layout.a = {.rows = out_features, .cols = tokens, .ld = out_features, .transpose = false};
  layout.b = {.rows = in_features, .cols = tokens, .ld = in_features, .transpose = true};
  layout.d = {.rows = out_features, .cols = in_features, .ld = out_features, .transpose = false};
  return layout;
}

namespace {

std::string OperandToString(const LtOperand& operand) {
  return absl::StrFormat("[%d x %d, ld %d, %s]", operand.rows, operand.cols, operand.ld,
                         operand.transpose ? "T" : "N");
}

}  // namespace

std::string LayoutToString(const LtGemmLayout& layout) {
  return absl::StrFormat("m=%d n=%d k=%d A%s B%s D%s", layout.m, layout.n, layout.k,
                         OperandToString(layout.a), OperandToString(layout.b),
                         OperandToString(layout.d));
}

}  // namespace trident::cuda
