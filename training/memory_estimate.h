#ifndef TRIDENT_TRAINING_MEMORY_ESTIMATE_H_
#define TRIDENT_TRAINING_MEMORY_ESTIMATE_H_

// What one rank of a layout will hold, estimated from the config before any
// tensor is allocated, so that a job that cannot fit in this machine's memory
// is refused with the estimate instead of running until the kernel kills it
// (a mistyped --dp=100000 or --micro_batch_size=1000000).
//
// fp32, per rank, for the largest pipeline stage:
//   parameters      its shards (tensor_parallel/param_count.h), Ψ elements
//                   of 4 bytes; under ZeRO 3 Ψ / dp plus the largest pair of
//                   consecutive layers of a chunk (a layer in use and the
//                   next one prefetched);
//   gradients       Ψ under ZeRO 0 and 1 (reduce-scatter in place); under
//                   ZeRO 2 and 3 the pooled parameters' shards (/ dp), the
//                   parameters kept in full (tied embedding, sequence-parallel
//                   LayerNorms) and 2 pool buffers of the largest bucket (whole
//                   layers, up to min(grad_bucket_mb, the largest layer));
//   optimizer state AdamW's two moments: 2Ψ, / dp under ZeRO >= 1;
//   (ZeRO at dp 1 is a no-op; the padding of each bucket to a multiple of dp,
//   under dp elements per bucket, is not counted;)
//   activations     per block and micro-batch, what the block holds after
//                   the forward under the layout's recomputation policy
//                   (transformer::BlockStashBytes: without recomputation
//                   4 (4Nh + 4N + (4Nh + 2Nf + N a) / tp) bytes for N =
//                   micro_batch_size x T tokens, a heads, h hidden, f ffn);
//                   times the micro-batches in flight (GPipe m; 1F1B and ZB-H1
//                   min(m, pp); interleaved v x min(m, 2 pp)), plus the last
//                   stage's logits and their gradient, 2 x 4 N V' / tp.
// An estimate, not a bound: allocator slack and workspace come on top.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct MemoryEstimate {
  int64_t parameter_bytes = 0;
  int64_t gradient_bytes = 0;
  int64_t optimizer_state_bytes = 0;
  int64_t activation_bytes = 0;
  int64_t total() const {
    return parameter_bytes + gradient_bytes + optimizer_state_bytes + activation_bytes;
  }
};

// The estimate for a config whose layout passed validation: its largest
// pipeline stage's.
absl::StatusOr<MemoryEstimate> EstimateRankMemory(const TrainConfig& config);
// The estimate for a rank of pipeline stage `stage` (INVALID_ARGUMENT
// outside [0, pipeline_parallel)).
absl::StatusOr<MemoryEstimate> EstimateStageMemory(const TrainConfig& config, int stage);

// The memory the kernel can give this process without swapping
// (MemAvailable of /proc/meminfo); 0 when unknown.
int64_t AvailableMemoryBytes();

// FAILED_PRECONDITION when `ranks_in_process` ranks of `estimate` exceed
// `available_bytes` (0: unknown, always OK), giving the estimate's parts.
absl::Status CheckMemoryFits(const MemoryEstimate& estimate, int ranks_in_process,
                             int64_t available_bytes);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_MEMORY_ESTIMATE_H_
