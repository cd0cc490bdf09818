#include "transformer/model_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"

namespace trident::transformer {
namespace {

absl::Status AtLeast(absl::string_view field, int64_t value, int64_t minimum,
                     absl::string_view why = "") {
  if (value >= minimum) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "model.", field, "=", value, " must be >= ", minimum,
      why.empty() ? "" : absl::StrCat(" (", why, ")")));
}

absl::Status FiniteAndPositive(absl::string_view field, double value) {
  if (std::isfinite(value) && value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("model.", field, "=", value, " must be a finite number > 0"));
}

}  // namespace

int64_t FfnHiddenSize(const GptConfig& config) {
  return config.ffn_hidden_size() > 0 ? int64_t{config.ffn_hidden_size()}
                                      : 4 * int64_t{config.hidden_size()};
}

GptConfig CanonicalGptConfig(const GptConfig& config) {
  GptConfig canonical = config;
  canonical.set_ffn_hidden_size(static_cast<int32_t>(FfnHiddenSize(config)));
  return canonical;
}

absl::Status ValidateGptConfig(const GptConfig& config) {
  RETURN_IF_ERROR(AtLeast("vocab_size", config.vocab_size(), 1));
  RETURN_IF_ERROR(AtLeast("context_length", config.context_length(), 1));
  RETURN_IF_ERROR(AtLeast("num_layers", config.num_layers(), 1));
  RETURN_IF_ERROR(AtLeast("num_heads", config.num_heads(), 1));
  RETURN_IF_ERROR(AtLeast("hidden_size", config.hidden_size(), 1));
  RETURN_IF_ERROR(
      AtLeast("ffn_hidden_size", config.ffn_hidden_size(), 0, "0 means 4 x hidden_size"));
  if (config.hidden_size() % config.num_heads() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.num_heads=", config.num_heads(), " must divide model.hidden_size=",
        config.hidden_size(), " (each attention head gets hidden_size / num_heads dimensions)"));
  }
  if (!config.tied_embeddings()) {
    return absl::InvalidArgumentError(
        "model.tied_embeddings=false is not supported: the output head always reuses the "
        "token embedding (GPT-2); remove the field or set it to true");
  }
  RETURN_IF_ERROR(FiniteAndPositive("init_std", config.init_std()));
  return FiniteAndPositive("layer_norm_epsilon", config.layer_norm_epsilon());
}

}  // namespace trident::transformer
