#ifndef TRIDENT_TRAINING_COMPRESSION_CHECKPOINT_H_
#define TRIDENT_TRAINING_COMPRESSION_CHECKPOINT_H_

// The gradient compressors' carried-over state in a checkpoint
// (data_parallel/compression/gradient_sync.h's BucketSyncState). Residuals
// differ per rank (each replica keeps what it has not sent yet) and buckets
// differ per tp/pp rank, so each rank saves its own state in its own rank
// file, next to its share of the optimizer state, as tensors outside the
// manifest (training/reshard.h describes parameters only):
//
//   compression/residual@<bucket>        fp32 [bucket size]  int8, Top-K, PowerSGD E
//   compression/topk_sparsity@<bucket>   int64 []  the IEEE-754 bits of adaptive K's
//                                                  average (tensor files hold no float64)
//   compression/powersgd_steps@<bucket>  int64 []  PowerSGD sums taken
//   compression/powersgd_q@<bucket>.<k>  fp32 [cols x rank] warm-start Q of matrix k
//
// CheckpointMeta::holds_compression_state says the rank files carry it. The
// state belongs to the bucket layout of the job that wrote it: a resume
// restores it only when model, layout and world size are those of the
// checkpoint (checkpoint::CheckResumeCompatible), and otherwise drops it with
// a logged line, as it does when this job keeps no such state, the
// checkpoint holds none, or an earlier build wrote it at tp > 1 with other
// buckets (CheckpointMeta::tp_replicated_buckets_apart unset)
// (PlanCompressionResume). Nothing changes silently.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data_parallel/compression/gradient_sync.h"
#include "topology/layout.pb.h"
#include "training/checkpoint/checkpoint_meta.pb.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::training {

// Whether a job of this layout keeps compression state between steps: a lossy
// gradient_compression with error feedback (int8, topk, powersgd) whose
// gradients are summed over more than one replica (dp_sync=sync).
bool KeepsCompressionState(const topology::ParallelLayout& layout);

// One rank's state as checkpoint tensors. The blobs borrow this object's
// memory: keep it alive until the rank file is written.
class CompressionStateBlobs {
 public:
  explicit CompressionStateBlobs(std::vector<data_parallel::BucketSyncState> state);
  void AppendTo(std::vector<checkpoint::TensorBlob>& blobs) const;
  bool empty() const { return state_.empty(); }

 private:
  std::vector<data_parallel::BucketSyncState> state_;
  // Per bucket: the sparsity's bits and PowerSGD's steps, as the blobs' bytes.
  std::vector<int64_t> sparsity_bits_;
  std::vector<int64_t> powersgd_steps_;
};

// Rank `rank`'s state from the checkpoint in `dir` described by `meta`: only
// its "compression/" tensors are read, each checked against its CRC-32C, from
// a file whose size and CRC-32C (its trailer) are those the meta records.
// Errors (DATA_LOSS) name the checkpoint, the file and the tensor.
absl::StatusOr<std::vector<data_parallel::BucketSyncState>> ReadCompressionState(
    const std::string& dir, const checkpoint::CheckpointMeta& meta, int rank);

// What a resume does with the compression state of the checkpoint in `dir`
// (`saved`) under the job `current` (as MakeCheckpointMeta builds it), and
// the line it logs (empty: nothing to say, neither side keeps any state).
struct CompressionResumePlan {
  bool restore = false;
  std::string note;
};
CompressionResumePlan PlanCompressionResume(const std::string& dir,
                                            const checkpoint::CheckpointMeta& saved,
                                            const checkpoint::CheckpointMeta& current);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_COMPRESSION_CHECKPOINT_H_
