#ifndef TRIDENT_TRAINING_LOSS_SCALER_H_
#define TRIDENT_TRAINING_LOSS_SCALER_H_

// FP16's loss scaler (Micikevicius et al. 2018; Megatron's and DeepSpeed's
// DynamicLossScaler). The loss is multiplied by scale() before the backward
// so that small gradients survive fp16's 5-bit exponent; the optimizer
// divides the gradients by it again before clipping. After every step the
// caller reports whether any gradient on any rank was inf or NaN:
//
//   overflow: the step is skipped (no update). A dynamic scale loses one unit
//             of hysteresis; when none is left it halves (never below
//             min_scale) and the clean-step count restarts.
//   clean:    the step is taken. After `window` consecutive clean steps a
//             dynamic scale doubles and the hysteresis is restored (Megatron's
//             rule; DeepSpeed's default restores it only there too).
//
// A static scaler (dynamic = false) keeps its scale and still skips
// overflowing steps. Scales stay powers of two when they start as one, so
// scaling and unscaling are exact in binary floating point.

#include <cstdint>

#include "absl/status/statusor.h"
#include "training/train_config.pb.h"

namespace trident::training {

class LossScaler {
 public:
  // The config's rules are ValidateTrainConfig's (training/train_config.h);
  // a config that breaks them is INVALID_ARGUMENT here too.
  static absl::StatusOr<LossScaler> Create(const LossScaleConfig& config);

  double scale() const { return scale_; }
  bool dynamic() const { return config_.dynamic(); }
  // Steps skipped so far because of an overflow.
  int64_t skipped_steps() const { return skipped_steps_; }

  // Records one step's outcome; returns true when the step must be skipped
  // (`overflow`), after updating the scale as described above.
  bool Update(bool overflow);

  // The state a checkpoint keeps, so that a resumed run continues with the
  // same scale, counters and skip count.
  struct State {
    double scale = 0;
    int64_t clean_steps = 0;
    int64_t hysteresis_left = 0;
    int64_t skipped_steps = 0;
  };
  State state() const { return {scale_, clean_steps_, hysteresis_left_, skipped_steps_}; }
  // INVALID_ARGUMENT (naming the value) for a scale that is not finite and
  // > 0 or a negative counter.
  absl::Status Restore(const State& state);

 private:
  explicit LossScaler(const LossScaleConfig& config);

  LossScaleConfig config_;
  double scale_;
  int64_t clean_steps_ = 0;
  int64_t hysteresis_left_;
  int64_t skipped_steps_ = 0;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_LOSS_SCALER_H_
