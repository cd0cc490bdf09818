#ifndef TRIDENT_TOOLS_CONFIG_FLAGS_H_
#define TRIDENT_TOOLS_CONFIG_FLAGS_H_

// The flags that pick a job's config and layout, shared by every tool that
// runs the model (//tools:train, //tools:bubble_profile, and the layout flags
// of //tools:convert_checkpoint): --config, --seed, the precision flags
// (--precision, --loss_scale, --loss_scale_window, --hysteresis) and
// the layout overrides (--tp, --pp, --dp, --micro_batches, --micro_batch_size,
// --global_batch_size, --virtual_stages, --schedule, --sequence_parallel,
// --zero_stage, --overlap_grad_reduce, --grad_bucket_mb, --cpu_offload,
// --gradient_compression, --topk_ratio, --topk_adaptive, --powersgd_rank,
// --compression_scaling,
// --dp_allreduce, --dp_sync, --local_sgd_steps).

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "topology/layout.pb.h"
#include "training/train_config.pb.h"

namespace trident::tools {

// The config named by --config (the embedded default when empty) with --seed,
// the precision flags and the layout flags applied. Errors name the flag or the config field.
absl::StatusOr<training::TrainConfig> TrainConfigFromFlags();

// The layout flags (--tp, --pp, ..., --recompute) applied to `layout`, and
// its micro-batches derived; what TrainConfigFromFlags does after --config.
absl::Status ApplyLayoutFlags(topology::ParallelLayout* layout);

// Whether --seed was given (tools that take the seed from elsewhere refuse it).
bool SeedFlagGiven();

// The file --config names, resolved against the user's directory; empty for
// the embedded default.
std::string ConfigFileFromFlags();

}  // namespace trident::tools

#endif  // TRIDENT_TOOLS_CONFIG_FLAGS_H_
