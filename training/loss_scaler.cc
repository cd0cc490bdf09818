#include "training/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "training/train_config.h"

namespace trident::training {

absl::StatusOr<LossScaler> LossScaler::Create(const LossScaleConfig& config) {
  if (absl::Status status = ValidateLossScaleConfig(config); !status.ok()) return status;
  return LossScaler(config);
}

LossScaler::LossScaler(const LossScaleConfig& config)
    : config_(config), scale_(config.initial_scale()), hysteresis_left_(config.hysteresis()) {}

bool LossScaler::Update(bool overflow) {
  if (overflow) {
    ++skipped_steps_;
    if (!config_.dynamic()) return true;
    clean_steps_ = 0;
    if (--hysteresis_left_ <= 0) {
      scale_ = std::max(scale_ / 2, config_.min_scale());
      hysteresis_left_ = config_.hysteresis();
    }
    return true;
  }
  if (config_.dynamic() && ++clean_steps_ >= config_.window()) {
    scale_ *= 2;
    clean_steps_ = 0;
    hysteresis_left_ = config_.hysteresis();
  }
  return false;
}

absl::Status LossScaler::Restore(const State& state) {
  if (!(std::isfinite(state.scale) && state.scale > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss scaler state: scale=", state.scale, " must be a finite number > 0"));
  }
  if (state.clean_steps < 0 || state.hysteresis_left < 0 || state.skipped_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "loss scaler state: clean_steps=", state.clean_steps, ", hysteresis_left=",
        state.hysteresis_left, ", skipped_steps=", state.skipped_steps, " must all be >= 0"));
  }
  scale_ = state.scale;
  clean_steps_ = state.clean_steps;
  hysteresis_left_ = state.hysteresis_left;
  skipped_steps_ = state.skipped_steps;
  return absl::OkStatus();
}

}  // namespace trident::training
