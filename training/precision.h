#ifndef TRIDENT_TRAINING_PRECISION_H_
#define TRIDENT_TRAINING_PRECISION_H_

// The one home of the precision names ("fp32", "bf16", "fp16": the values of
// //tools:train --precision) and of the --loss_scale flag's syntax. The enum
// itself is training/train_config.proto's Precision.

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "training/train_config.pb.h"

namespace trident::training {

// "fp32" -> FP32, "bf16" -> BF16, "fp16" -> FP16; anything else is
// INVALID_ARGUMENT naming the value and the choices.
absl::StatusOr<Precision> ParsePrecision(absl::string_view name);

// The inverse of ParsePrecision.
absl::string_view PrecisionName(Precision precision);

// How far (relative, per step) a bf16 or fp16 run's loss may stray from the
// fp32 run's of the same job: the default model tracks fp32 within it over
// 200 steps (training/default_model_precision_test.cc); the GPU's bf16 run is
// held to it too (training/cuda/cuda_train_test.cc).
inline constexpr double kMixedPrecisionLossTolerance = 2e-2;

// The dtype of the model's parameters, activations and gradients.
DType ModelDType(Precision precision);

// Applies --loss_scale's value: "dynamic" sets a dynamic scaler (keeping the
// config's initial_scale); a number sets a static scale of that value, which
// must be finite and > 0. Errors are INVALID_ARGUMENT naming the flag.
absl::Status ApplyLossScaleFlag(absl::string_view value, LossScaleConfig* config);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_PRECISION_H_
