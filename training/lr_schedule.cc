#include "training/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "core/check.h"

namespace trident::training {

double LearningRate(int64_t step, const OptimizerConfig& config, int64_t total_steps) {
  TRIDENT_CHECK_GE(step, 0) << "LearningRate: steps count from 0";
  TRIDENT_CHECK_GE(total_steps, 1) << "LearningRate: total_steps";
  const double peak = config.learning_rate();
  const double floor = config.min_learning_rate();
  const int64_t warmup = config.warmup_steps();
  const int64_t decay_end = config.decay_steps() > 0 ? config.decay_steps() : total_steps;

  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (config.decay() == OptimizerConfig::CONSTANT) return peak;
  if (step >= decay_end) return floor;
  // warmup <= step < decay_end, so the span is at least 1.
  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(decay_end - warmup);
  switch (config.decay()) {
    case OptimizerConfig::COSINE:
      return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    case OptimizerConfig::LINEAR:
      return floor + (peak - floor) * (1.0 - progress);
    case OptimizerConfig::CONSTANT:
      break;
  }
  TRIDENT_CHECK(false) << "LearningRate: unhandled decay " << static_cast<int>(config.decay());
  return peak;
}

}  // namespace trident::training
