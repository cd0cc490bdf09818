#ifndef TRIDENT_TRAINING_DEFAULT_CONFIG_H_
#define TRIDENT_TRAINING_DEFAULT_CONFIG_H_

// The default training job, configs/default.textproto, compiled into the
// binary so that `//tools:train` runs without any file argument. The text is
// embedded byte for byte at build time (a genrule turns the file into a byte
// array, so no character of it needs escaping); editing the file and
// rebuilding changes the default.

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "training/train_config.pb.h"

namespace trident::training {

// The exact bytes of configs/default.textproto.
absl::string_view DefaultTrainConfigText();

// The same, parsed (errors name "configs/default.textproto (embedded)"). Not
// validated: callers apply their overrides first, then ValidateTrainConfig.
absl::StatusOr<TrainConfig> DefaultTrainConfig();

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_DEFAULT_CONFIG_H_
