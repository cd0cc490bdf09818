#include "core/cuda/gemm_plan_key.h"

#include "absl/strings/str_cat.h"

namespace trident::cuda {

const char* LtEpilogueName(LtEpilogue epilogue) {
  switch (epilogue) {
    case LtEpilogue::kNone:
      return "none";
    case LtEpilogue::kBias:
      return "bias";
    case LtEpilogue::kBiasGeluAux:
      return "bias_gelu_aux";
    case LtEpilogue::kBiasGradA:
      return "bgrada";
  }
  return "unknown";
}

std::string GemmPlanKeyToString(const GemmPlanKey& key) {
  return absl::StrCat(LayoutToString(key.layout), " ", DTypeName(key.dtype),
                      key.allow_tf32 ? "(tf32)" : "", " ", LtEpilogueName(key.epilogue), " align ",
                      key.alignment_bytes);
}

}  // namespace trident::cuda
