#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_H_

// The sum of one data-parallel gradient bucket over the replicas, as the
// layout chose it (GradientSyncOptions): the native, ring or tree all-reduce
// of the fp32 buffer, or a compressed reduction. GradientReducer
// (data_parallel/grad_buckets.h) hands every bucket here when it starts it.
//
// Compressed modes, per bucket and step (bytes are what each rank sends, for
// a bucket of d fp32 elements on n ranks, n dividing d; the communicator
// counts them):
//   bf16, fp16  ring, 16-bit wire, fp32 sums (scaled_half_codec.h):
//               2 (n-1) (d/n + 2) * 2 bytes (vs 2 (n-1) d/n * 4 for fp32).
//   int8        error feedback, then a ring with int8 blocks (int8_codec.h):
//               2 (n-1) * 4 * Int8WireWords(d/n), about 2 (n-1) d/n * 1.002.
//   topk        error feedback, all-gather of K values and K int32 indices
//               (topk.h): 8 K bytes sent and 8 K n gathered; adaptive K adds
//               a 4-byte all-reduce of the measured sparsity.
//   powersgd    error feedback, rank-r factors of every 2-D gradient
//               (powersgd.h): all-reduces of 4 r (rows + cols) per matrix
//               plus the 1-D elements uncompressed.
// Compressed reductions run to completion when started (the returned handle
// is complete): they do not overlap with the backward.
//
// State: error-feedback residuals (one fp32 buffer per bucket, the bucket's
// size) and adaptive-K averages live here, per bucket index, for the run.
// What a resumed run needs to continue bit for bit (BucketSyncState, saved
// per rank by training/compression_checkpoint.h):
//   int8, topk  the error-feedback residual of every bucket;
//   topk        with topk_adaptive, the moving average of the sparsity;
//   powersgd    per bucket its step count (start_step counts them), the
//               warm-start Q of every compressed matrix and the residual E.
// Not state: the K of the latest Top-K reduction (recomputed before each
// use; kept for the progress line), the buckets' matrices (the reducer
// describes them when it is built), PowerSGD's last contribution (a probe
// for tests) and PowerSGD's initial Q (a function of the bucket index).
// bf16 and fp16 keep nothing between steps.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "data_parallel/compression/gradient_sync_options.h"
#include "data_parallel/compression/powersgd.h"
#include "data_parallel/compression/topk.h"

namespace trident::data_parallel {

// One bucket's carried-over state (see the file comment); the parts a mode
// does not use are empty.
struct BucketSyncState {
  int bucket = 0;
  // int8 and Top-K error feedback, and PowerSGD's E: one value per bucket
  // element.
  std::vector<float> residual;
  // Top-K with topk_adaptive: the sparsity average, once measured.
  std::optional<double> topk_sparsity;
  // PowerSGD: the sums taken and the Q of every compressed matrix (set
  // exactly when this bucket was summed by PowerSGD).
  std::optional<int64_t> powersgd_steps;
  std::vector<std::vector<float>> powersgd_q;
};

class GradientSync {
 public:
  explicit GradientSync(const GradientSyncOptions& options) : options_(options) {}

  // Starts the sum over `dp` of bucket `bucket`'s flat fp32 gradient, in
  // place. Every member calls it for the same buckets in the same order.
  // Compressed modes need the buffer in host memory.
  std::unique_ptr<comm::CommHandle> StartSum(comm::Communicator& dp, int bucket,
                                             comm::Buffer gradient);

  // The blocking form, for tests.
  absl::Status Sum(comm::Communicator& dp, int bucket, absl::Span<float> gradient) {
    return StartSum(dp, bucket, comm::MakeBuffer(gradient))->Wait();
  }

  // The 2-D gradients inside bucket `bucket` (PowerSGD compresses those);
  // the reducer describes every bucket once, before its first sum.
  void DescribeBucket(int bucket, std::vector<BucketMatrix> matrices) {
    matrices_[bucket] = std::move(matrices);
  }

  const GradientSyncOptions& options() const { return options_; }
  // Error feedback: what bucket `bucket` has not sent yet (empty before its
  // first lossy reduction).
  absl::Span<const float> residual(int bucket) const;
  // PowerSGD: bucket `bucket`'s state (null before its first sum).
  const PowerSgdBucket* powersgd(int bucket) const {
    const auto it = powersgd_.find(bucket);
    return it == powersgd_.end() ? nullptr : &it->second;
  }
  // Top-K: the K each bucket used at its latest reduction, by bucket index.
  const absl::flat_hash_map<int, int64_t>& topk_k() const { return topk_k_; }

  // Every bucket's carried-over state, by increasing bucket index (buckets
  // never summed by a lossy mode are left out: they start afresh anyway).
  std::vector<BucketSyncState> ExportState() const;
  // Continues from `state` (ExportState of a run with these options and
  // buckets): bucket b's residual must have bucket_sizes[b] elements and its
  // PowerSGD Q's the shapes this bucket's matrices give. Checked before
  // anything changes; INVALID_ARGUMENT naming the bucket and the part
  // otherwise. Buckets absent from `state` start afresh.
  absl::Status RestoreState(const std::vector<BucketSyncState>& state,
                            absl::Span<const int64_t> bucket_sizes);

 private:
  absl::Status Compressed(comm::Communicator& dp, int bucket, absl::Span<float> gradient);
  absl::Status TopK(comm::Communicator& dp, int bucket, absl::Span<float> gradient);
  std::vector<float>& ResidualOf(int bucket, int64_t size);
  // PowerSGD's state of a bucket of `size` elements, made on first use.
  PowerSgdBucket& PowerSgdOf(int bucket, int64_t size);
  AdaptiveK& AdaptiveKOf(int bucket);

  GradientSyncOptions options_;
  absl::flat_hash_map<int, std::vector<float>> residuals_;
  absl::flat_hash_map<int, AdaptiveK> adaptive_k_;
  absl::flat_hash_map<int, int64_t> topk_k_;
  absl::flat_hash_map<int, std::vector<BucketMatrix>> matrices_;
  absl::flat_hash_map<int, PowerSgdBucket> powersgd_;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_H_
