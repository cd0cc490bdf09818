#include "training/precision.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace trident::training {

absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {
  if (name == "fp32") return FP32;
  if (name == "bf16") return BF16;
  if (name == "fp16") return FP16;
  return absl::InvalidArgumentError(
      absl::StrCat("--precision=", name, " is not one of fp32, bf16, fp16"));
}

absl::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case FP32:
      return "fp32";
    case BF16:
      return "bf16";
    case FP16:
      return "fp16";
  }
  return "unknown";
}

DType ModelDType(Precision precision) {
  switch (precision) {
    case BF16:
      return DType::kBFloat16;
    case FP16:
      return DType::kFloat16;
    case FP32:
      break;
  }
  return DType::kFloat32;
}

absl::Status ApplyLossScaleFlag(absl::string_view value, LossScaleConfig* config) {
  if (value == "dynamic") {
    config->set_dynamic(true);
    return absl::OkStatus();
  }
  double scale = 0;
  if (!absl::SimpleAtod(value, &scale) || !std::isfinite(scale) || scale <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--loss_scale=", value, " must be \"dynamic\" or a finite number > 0 (a static scale)"));
  }
  config->set_dynamic(false);
  config->set_initial_scale(scale);
  return absl::OkStatus();
}

}  // namespace trident::training
