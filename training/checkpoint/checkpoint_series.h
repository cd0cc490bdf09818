#ifndef TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_SERIES_H_
#define TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_SERIES_H_

// The checkpoints of one run, as Megatron keeps them: a save directory (the
// trainer's --save) holding one checkpoint (checkpoint.h) per save,
//
//   <root>/step_00000100/   the checkpoint taken to resume at step 100
//   <root>/step_00000200/
//   <root>/latest -> step_00000200
//
// `latest` is a relative symbolic link, swapped atomically (a new link, then
// rename) after the checkpoint it names is complete, so it always names a
// whole checkpoint. A resume may name the root (meaning `latest`) or one step
// directory. Pruning keeps the newest K checkpoints and removes only
// directories named step_<8 digits> that hold a checkpoint.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trident::checkpoint {

// "<root>/step_00000100".
std::string StepCheckpointDir(const std::string& root, int64_t step);

// Creates the save directory `root` (and its parents) when missing.
absl::Status CreateSaveDirectory(const std::string& root);

// Points <root>/latest at the checkpoint of `step` (which must exist).
absl::Status SetLatestCheckpoint(const std::string& root, int64_t step);

// The steps of the checkpoints under `root`, ascending (empty when none or
// when root does not exist).
std::vector<int64_t> CheckpointSteps(const std::string& root);

// Removes all but the newest `keep_last` (>= 1) checkpoints under `root`.
absl::Status PruneCheckpoints(const std::string& root, int keep_last);

// The checkpoint directory a --resume path names: the path itself when it is
// a checkpoint (it holds a rank file or meta file), else <path>/latest
// resolved. NOT_FOUND naming the path when it is neither.
absl::StatusOr<std::string> ResolveResumeCheckpoint(const std::string& path);

// Whether `dir` is a save root (holds `latest` or step_ checkpoints) or a
// single checkpoint.
bool IsCheckpointDirectory(const std::string& dir);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_SERIES_H_
