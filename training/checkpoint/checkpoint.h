#ifndef TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_
#define TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_

// A checkpoint is a directory:
//
//   <dir>/rank_00000.tensors   one tensor file per rank (see tensor_file.h):
//   <dir>/rank_00001.tensors   parameters and optimizer state are just named
//   ...                        tensors ("param/<name>", "adam_m/<name>", ...)
//   <dir>/meta.json            format version, step, seed, data position, RNG
//                              state, parallel layout, world size, and the size
//                              and CRC-32C of every rank file
//
// Writing, for a trainer with `world_size` ranks sharing one filesystem:
//
//   rank 0:     partial = BeginCheckpoint(dir)     // fresh <dir>.partial/
//   all ranks:  barrier
//   each rank:  WriteRankShard(partial, rank, its tensors)
//   all ranks:  barrier
//   rank 0:     FinalizeCheckpoint(dir, meta)
//
// FinalizeCheckpoint checks that exactly the rank files 0..world_size-1 are in
// `<dir>.partial`, writes meta.json there last, and then swaps the directory in:
// with no `<dir>` yet it renames `<dir>.partial` to `<dir>`; otherwise it renames
// `<dir>` to `<dir>.old`, `<dir>.partial` to `<dir>`, and removes `<dir>.old`,
// fsyncing the parent directory after each step. It refuses to replace a
// `<dir>` that is neither a checkpoint (has meta.json) nor an empty directory,
// and deletes a `<dir>.partial` or `<dir>.old` only when all it holds is rank
// files and meta.json (with their temporaries).
//
// Crash safety (every file is written with AtomicFileWriter: fsync, rename,
// directory fsync). Wherever a crash happens, one complete checkpoint survives:
//   - before the first rename: `<dir>` is the old checkpoint, untouched; the
//     next BeginCheckpoint discards the stale `<dir>.partial`;
//   - between the two renames: `<dir>` is missing, `<dir>.old` holds the old
//     checkpoint and `<dir>.partial` the complete new one (meta.json is written
//     only after every rank file is in place). RecoverCheckpoint(dir) renames
//     the new one into place (or the old one, when the new one lacks meta.json);
//     BeginCheckpoint does so too, and readers refuse with a message saying so;
//   - after the second rename: `<dir>` is the new checkpoint; the leftover
//     `<dir>.old` is removed by the next Finalize or Recover.
//
// Reading: ReadCheckpointMeta, CheckResumeCompatible (world size and layout
// must equal the running job's), then ReadRankShard on every rank; each rank
// file is fully verified (see tensor_file.h) and must match the size and CRC
// that meta.json records for it. A missing, truncated or corrupted file, or a
// mismatch, is an error naming the checkpoint, the file and the rule broken.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::checkpoint {

inline constexpr int kCheckpointFormatVersion = 1;

// The size and CRC of one rank's tensor file, as meta.json records it.
struct RankFileInfo {
  std::string name;  // "rank_00003.tensors"
  uint64_t size = 0;
  uint32_t crc32c = 0;
};

// Everything about a checkpoint except the tensors. The trainer fills in the
// first block; FinalizeCheckpoint fills `format_version` and `files`.
struct CheckpointMeta {
  int64_t step = 0;
  uint64_t seed = 0;
  std::vector<int64_t> data_position;  // opaque to this package
  std::string rng_state;               // opaque bytes (stored as hex)
  std::string layout;                  // opaque text describing the parallel layout
  int world_size = 1;

  int format_version = kCheckpointFormatVersion;
  std::vector<RankFileInfo> files;  // one per rank, in rank order
};

// "rank_00003.tensors".
std::string RankFileName(int rank);
// "<dir>.partial", "<dir>.old" (trailing slashes of `dir` ignored).
std::string PartialCheckpointDir(absl::string_view dir);
std::string OldCheckpointDir(absl::string_view dir);

// meta.json text and its parser (exposed for tests and tools).
std::string FormatCheckpointMeta(const CheckpointMeta& meta);
absl::StatusOr<CheckpointMeta> ParseCheckpointMeta(absl::string_view text,
                                                   absl::string_view source);

// Rank 0, before the ranks write: finishes an interrupted replacement
// (RecoverCheckpoint), then removes any stale `<dir>.partial` and creates it
// empty. Returns its path.
absl::StatusOr<std::string> BeginCheckpoint(const std::string& dir);

// Each rank: writes `<partial_dir>/rank_<rank>.tensors` atomically (creating
// `partial_dir` if needed).
absl::Status WriteRankShard(const std::string& partial_dir, int rank,
                            absl::Span<const TensorBlob> tensors);

// Rank 0, after every rank wrote: verifies the rank files, writes meta.json
// (with `files` filled in from them) and moves the checkpoint into place.
absl::Status FinalizeCheckpoint(const std::string& dir, const CheckpointMeta& meta);

// Completes or rolls back a replacement interrupted between its two renames
// (see above) and removes a leftover `<dir>.old`. Does nothing when `<dir>` is
// complete or nothing is there.
absl::Status RecoverCheckpoint(const std::string& dir);

// Reads and parses `<dir>/meta.json`.
absl::StatusOr<CheckpointMeta> ReadCheckpointMeta(const std::string& dir);

// The checkpoint in `dir` (described by `meta`) can be resumed by a job with
// this world size and layout text; otherwise an error naming both values.
absl::Status CheckResumeCompatible(const std::string& dir, const CheckpointMeta& meta,
                                   int world_size, absl::string_view layout);

// Reads and verifies rank `rank`'s tensors, checking them against meta.json.
absl::StatusOr<TensorSet> ReadRankShard(const std::string& dir, int rank);

// Single-process conveniences (world size 1): the full protocol in one call.
// `meta.world_size` must be 1.
absl::Status SaveCheckpoint(const std::string& dir, const CheckpointMeta& meta,
                            absl::Span<const TensorBlob> tensors);

struct LoadedCheckpoint {
  CheckpointMeta meta;
  TensorSet tensors;
};
// Reads a world-size-1 checkpoint written under `layout`.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                absl::string_view layout);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_CHECKPOINT_H_
