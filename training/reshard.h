#ifndef TRIDENT_TRAINING_RESHARD_H_
#define TRIDENT_TRAINING_RESHARD_H_

// Checkpoints that move between layouts (format version 3).
//
// Saving: each rank describes the tensors AdamW::AppendStateBlobs gives it as
// windows of global parameters (LocalManifest); rank 0 merges the ranks'
// descriptions (MergeManifests) into CheckpointMeta::parameters.
//
// Loading, under any layout of the same model: each rank asks for exactly the
// tensors its own AppendStateBlobs would write (their names, dtypes, shapes)
// and ReadWindows assembles them from whichever rank files hold the needed
// global elements, reading only those byte ranges (TensorFileIndex). The
// result feeds AdamW::LoadState, which checks it as for a same-layout resume.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/parameter.h"
#include "training/checkpoint/checkpoint_meta.pb.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::training {

// The windows `blobs` (one rank's AdamW::AppendStateBlobs, written to
// `file_name`) hold, per parameter of `params`, in parameter order. Also
// computes each blob's CRC-32C. "optimizer/step" is left out; other tensors
// are refused.
absl::StatusOr<std::vector<checkpoint::ParameterManifest>> LocalManifest(
    const ParameterList& params, absl::Span<const checkpoint::TensorBlob> blobs,
    const std::string& file_name);

// Rank manifests (rank order) into one: a parameter's global shape and dtype
// must agree everywhere (INTERNAL otherwise); windows with the same placement
// as an earlier one (data-parallel replicas, tensor-parallel copies of a
// replicated parameter) are kept once.
absl::Status MergeManifests(
    const std::vector<std::vector<checkpoint::ParameterManifest>>& ranks,
    checkpoint::CheckpointMeta* meta);

// The tensors `wanted` names (this rank's AppendStateBlobs: their names,
// dtypes and shapes; the bytes are ignored), assembled from the checkpoint in
// `dir` described by `meta` (format version 3), reading only the byte ranges
// needed. Every rank file touched must have the size and CRC-32C the meta
// records (as its trailer states them), and every source tensor the size and
// CRC-32C its window records (as the file's verified header states them).
// The whole-file CRC-32C of rank files `rank`, `rank + world_size`, ... is
// recomputed by streaming them (keeping nothing), so that together the ranks
// check every file once; the caller must agree on the result across ranks
// before any of them loads. Every element must be covered by some window, except embedding rows past
// the checkpoint's (padded) vocabulary, which are padding and load as zero
// (`vocab_size` rows are real). Errors name the checkpoint, the file and the
// manifest field.
absl::StatusOr<checkpoint::TensorSet> ReadWindows(const std::string& dir,
                                                 const checkpoint::CheckpointMeta& meta,
                                                 const ParameterList& params,
                                                 absl::Span<const checkpoint::TensorBlob> wanted,
                                                 int64_t vocab_size, int rank, int world_size);

// Every parameter's whole value in the serial layout (tensors named as the
// parameters, in manifest order), assembled by ReadWindows from a format-3
// checkpoint in one process (which therefore verifies every rank file), the
// token embedding cut to the model's vocabulary.
absl::StatusOr<std::vector<checkpoint::LoadedTensor>> ReadSerialParameters(
    const std::string& dir, const checkpoint::CheckpointMeta& meta);

// Writes `tensors` (whole parameters, serial layout, named as the model's
// parameters) as a world-size-1 format-3 checkpoint in `dir` with fresh
// optimizer state: zero AdamW moments and optimizer step 0. `meta` gives the
// step, seed, data position, model, layout and sequence length; the manifest
// and files are filled in here. Loading it under a layout (ReadWindows, as
// any resharded resume does) cuts each rank's windows out of it.
absl::Status WriteFreshSerialCheckpoint(const std::string& dir, checkpoint::CheckpointMeta meta,
                                        absl::Span<const checkpoint::LoadedTensor> tensors);

// Whether each rank resumes from its own rank file instead of the manifest,
// because copies the manifest keeps once (one window per placement) may
// differ between the ranks that hold them:
//   - local SGD and gossip (dp_sync local_sgd or gossip, data_parallel > 1):
//     between averages the replicas hold different parameters, and AdamW's
//     moments are always their own. Every rank file keeps its replica's (the
//     data position fixes the local-SGD phase: averages follow steps H, 2H,
//     ...). Such a checkpoint resumes only under its own model, layout and
//     world size (checkpoint::CheckResumeCompatible): true then; under any
//     other job (a layout change, a conversion, dp_sync=sync) it is refused,
//     FAILED_PRECONDITION naming the differing field: the replicas are never
//     averaged, nor replica 0 taken for all, silently.
//   - lossy gradient compression (saved.holds_compression_state()): each
//     rank's file holds its own state, and a checkpoint written before
//     compressed buckets kept tp-replicated parameters apart
//     (data_parallel/grad_buckets.h) may hold tp copies of a replicated
//     parameter that drifted apart. Under its own job: true, so the resume is
//     exact; otherwise false (the manifest gives tp rank 0's copy to all, as
//     an export does).
// False otherwise: the manifest path, which reshards.
absl::StatusOr<bool> ResumeFromOwnRankFiles(const std::string& dir,
                                            const checkpoint::CheckpointMeta& saved,
                                            const checkpoint::CheckpointMeta& current);

// "tp=2 pp=2 dp=2 zero=1 vpp=1 layers_per_stage=[...]" for logs.
std::string DescribeLayout(const checkpoint::CheckpointMeta& meta);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_RESHARD_H_
