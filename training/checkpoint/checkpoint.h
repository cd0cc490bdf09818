#ifndef TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_
#define TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_

// A checkpoint is a directory:
//
//   <dir>/rank_00000.tensors   one tensor file per rank (see tensor_file.h):
//   <dir>/rank_00001.tensors   parameters and optimizer state are just named
//   ...                        tensors ("param/<name>", "adam_m/<name>", ...)
//   <dir>/meta.textproto       CheckpointMeta (checkpoint_meta.proto) in text
//                              format: format version, step, seed, data
//                              position, model, layout, seq_length, world
//                              size, and the size and CRC-32C of every rank file
//
// Writing, for a trainer with `world_size` ranks sharing one filesystem:
//
//   rank 0:     partial = BeginCheckpoint(dir)     // fresh <dir>.partial/
//   all ranks:  barrier
//   each rank:  WriteRankShard(partial, rank, its tensors)
//   all ranks:  barrier
//   rank 0:     FinalizeCheckpoint(dir, meta)   // meta from MakeCheckpointMeta
//
// FinalizeCheckpoint checks that exactly the rank files 0..world_size-1 are in
// `<dir>.partial`, writes the meta file there last, and then swaps the directory in:
// with no `<dir>` yet it renames `<dir>.partial` to `<dir>`; otherwise it renames
// `<dir>` to `<dir>.old`, `<dir>.partial` to `<dir>`, and removes `<dir>.old`,
// fsyncing the parent directory after each step. It refuses to replace a
// `<dir>` that is neither a checkpoint (has the meta file) nor an empty directory,
// and deletes a `<dir>.partial` or `<dir>.old` only when all it holds is rank
// files and the meta file (with their temporaries).
//
// Crash safety (every file is written with AtomicFileWriter: fsync, rename,
// directory fsync). Wherever a crash happens, one complete checkpoint survives:
//   - before the first rename: `<dir>` is the old checkpoint, untouched; the
//     next BeginCheckpoint discards the stale `<dir>.partial`;
//   - between the two renames: `<dir>` is missing, `<dir>.old` holds the old
//     checkpoint and `<dir>.partial` the complete new one (the meta file is written
//     only after every rank file is in place). RecoverCheckpoint(dir) renames
//     the new one into place (or the old one, when the new one lacks the meta file);
//     BeginCheckpoint does so too, and readers refuse with a message saying so;
//   - after the second rename: `<dir>` is the new checkpoint; the leftover
//     `<dir>.old` is removed by the next Finalize or Recover.
//
// Reading under another layout (format version 3): ReadCheckpointMeta,
// CheckReshardCompatible, then each rank reads the windows it needs
// (training/reshard.h, through TensorFileIndex).
//
// Reading a version 2 checkpoint: ReadCheckpointMeta, CheckResumeCompatible (model, layout,
// seq_length and world size must equal the running job's, field by field),
// then ReadRankShard on every rank; each rank file is fully verified (see
// tensor_file.h) and must match the size and CRC that the meta records for it.
// A missing, truncated or corrupted file, or a
// mismatch, is an error naming the checkpoint, the file and the rule broken.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "training/checkpoint/checkpoint_meta.h"
#include "training/checkpoint/checkpoint_meta.pb.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::checkpoint {

// "<dir>.partial", "<dir>.old" (trailing slashes of `dir` ignored).
std::string PartialCheckpointDir(absl::string_view dir);
std::string OldCheckpointDir(absl::string_view dir);

// Rank 0, before the ranks write: finishes an interrupted replacement
// (RecoverCheckpoint), then removes any stale `<dir>.partial` and creates it
// empty. Returns its path.
absl::StatusOr<std::string> BeginCheckpoint(const std::string& dir);

// Each rank: writes `<partial_dir>/rank_<rank>.tensors` atomically (creating
// `partial_dir` if needed).
absl::Status WriteRankShard(const std::string& partial_dir, int rank,
                            absl::Span<const TensorBlob> tensors);

// Rank 0, after every rank wrote: verifies the rank files, writes the meta file
// (with `files` filled in from them) and moves the checkpoint into place.
absl::Status FinalizeCheckpoint(const std::string& dir, const CheckpointMeta& meta);

// Completes or rolls back a replacement interrupted between its two renames
// (see above) and removes a leftover `<dir>.old`. Does nothing when `<dir>` is
// complete or nothing is there.
absl::Status RecoverCheckpoint(const std::string& dir);

// Reads and parses `<dir>/meta.textproto`.
absl::StatusOr<CheckpointMeta> ReadCheckpointMeta(const std::string& dir);

// Reads and verifies rank `rank`'s tensors, checking them against the meta file.
absl::StatusOr<TensorSet> ReadRankShard(const std::string& dir, int rank);

// Single-process conveniences (world size 1): the full protocol in one call.
// `meta.world_size()` must be 1.
absl::Status SaveCheckpoint(const std::string& dir, const CheckpointMeta& meta,
                            absl::Span<const TensorBlob> tensors);

struct LoadedCheckpoint {
  CheckpointMeta meta;
  TensorSet tensors;
};
// Reads a world-size-1 checkpoint that `current` (the job's meta, as
// MakeCheckpointMeta builds it) can resume (CheckResumeCompatible).
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                const CheckpointMeta& current);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_
