#include "training/default_config.h"

#include "training/train_config.h"

namespace trident::training {

absl::StatusOr<TrainConfig> DefaultTrainConfig() {
  return ParseTrainConfig(DefaultTrainConfigText(), "configs/default.textproto (embedded)");
}

}  // namespace trident::training
