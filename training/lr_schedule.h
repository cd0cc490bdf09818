#ifndef TRIDENT_TRAINING_LR_SCHEDULE_H_
#define TRIDENT_TRAINING_LR_SCHEDULE_H_

// The learning rate of each step: linear warm-up, then a decay to a floor
// (the schedule of nanoGPT and Megatron-LM).
//
// With peak = learning_rate, floor = min_learning_rate, W = warmup_steps,
// D = decay_steps (or total_steps when decay_steps is 0) and s the 0-based step:
//   s < W:               peak * (s + 1) / W          (the first step is not 0)
//   CONSTANT, s >= W:    peak
//   W <= s < D:          p = (s - W) / (D - W) in [0, 1)
//                        COSINE: floor + (peak - floor) * (1 + cos(pi * p)) / 2
//                        LINEAR: floor + (peak - floor) * (1 - p)
//   s >= D:              floor
// So the warm-up ends exactly at the peak (step W - 1), the decay starts from
// the peak (step W) and the last step of a run (total_steps - 1) is still a
// little above the floor, as in the reference implementations.

#include <cstdint>

#include "training/train_config.pb.h"

namespace trident::training {

// `config` must satisfy ValidateTrainConfig's optimizer rules; step >= 0 and
// total_steps >= 1 (checked: programming errors).
double LearningRate(int64_t step, const OptimizerConfig& config, int64_t total_steps);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_LR_SCHEDULE_H_
