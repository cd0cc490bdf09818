#ifndef TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_META_H_
#define TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_META_H_

// The checkpoint's metadata (checkpoint_meta.proto): building it from the
// job's configuration, its text form, and the checks a resume makes with it.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "training/checkpoint/checkpoint_meta.pb.h"
#include "training/checkpoint/tensor_blob.h"
#include "training/train_config.pb.h"

namespace trident::checkpoint {

// Version 1 was a hand-written meta.json; version 2 is CheckpointMeta in
// protobuf text format; version 3 adds the manifest (`parameters`: every
// parameter's global shape and the windows of it each rank file holds), so a
// checkpoint loads under another layout. Version 2 is still read (it resumes
// only under its own layout); a newer version is refused, naming it.
inline constexpr int kCheckpointFormatVersion = 3;
inline constexpr int kOldestCheckpointFormatVersion = 2;

// "rank_00003.tensors".
std::string RankFileName(int rank);

// The metadata of a checkpoint taken by a job running `config` on
// `world_size` ranks, to resume at `step` with the data stream at
// `data_position`. `format_version` and `files` are left to FinalizeCheckpoint.
CheckpointMeta MakeCheckpointMeta(const training::TrainConfig& config, int world_size,
                                  int64_t step, const DataPosition& data_position);

// Text format of `meta`, and its parser. The parser refuses (DATA_LOSS, naming
// `source` and the line and column or the field) text that is not a
// CheckpointMeta, an unsupported format_version, a world_size below 1, a
// negative step, and a file list that is not exactly rank_00000..rank_<N-1>.
std::string FormatCheckpointMeta(const CheckpointMeta& meta);
absl::StatusOr<CheckpointMeta> ParseCheckpointMeta(absl::string_view text,
                                                   absl::string_view source);

// The checkpoint in `dir`, described by `saved`, can be resumed by the job
// described by `current` (as MakeCheckpointMeta builds it): the model, the
// layout, seq_length and world_size must be equal, field by field and by value
// (a field set to its default equals an unset one). Otherwise
// FAILED_PRECONDITION naming the first differing field and both values, e.g.
// "layout.pipeline_parallel: checkpoint 2, this job 1".
absl::Status CheckResumeCompatible(const std::string& dir, const CheckpointMeta& saved,
                                   const CheckpointMeta& current);

// Like CheckResumeCompatible, for a job that reshards on load (format version
// 3): the model and seq_length must be equal, and the global batch (sequences
// per step) too, since the data order and the loss depend on it; the layout
// and world size may differ.
absl::Status CheckReshardCompatible(const std::string& dir, const CheckpointMeta& saved,
                                    const CheckpointMeta& current);

// The checkpoint in `dir` was trained on the data `current` describes: the
// same token count and CRC-32C (the path may differ: a moved file is the same
// data). A checkpoint without a data set (older ones) passes. Otherwise
// FAILED_PRECONDITION naming both files, unless `allow_different` (the
// --allow_different_data flag), which only the caller's log mentions.
absl::Status CheckSameData(const std::string& dir, const CheckpointMeta& saved,
                           const DataSet& current, bool allow_different);

// When `tensors` (a rank file of the checkpoint in `dir`) holds an int64
// scalar named `step_tensor`, it must equal `meta.step()`; DATA_LOSS naming
// both otherwise. A set without that tensor passes.
absl::Status CheckStoredStep(const std::string& dir, const CheckpointMeta& meta,
                             const TensorSet& tensors, absl::string_view step_tensor);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_META_H_
