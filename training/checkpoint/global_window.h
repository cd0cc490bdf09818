#ifndef TRIDENT_TRAINING_CHECKPOINT_GLOBAL_WINDOW_H_
#define TRIDENT_TRAINING_CHECKPOINT_GLOBAL_WINDOW_H_

// Where a rank's saved tensor sits in the global (serial) parameter, in the
// checkpoint manifest's terms: a shard spec (core/parameter.h's ShardLayout,
// restated in plain integers so that the checkpoint library stays independent
// of core::Tensor) plus a flat element range [offset, offset + length) of the
// rank-local tensor. A flat range is what a ZeRO window is (a window of the
// flat gradient buffer, data_parallel/grad_buckets.h, which crosses row
// boundaries), so no hyper-rectangle could describe it; the shard spec turns
// each local element into its global one.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trident::checkpoint {

struct ShardSpec {
  std::vector<int64_t> global_shape;
  // -1 (or num_shards == 1): the local tensor is the whole parameter.
  int split_dim = -1;
  int num_shards = 1;
  int shard_index = 0;
  // Equal blocks along split_dim, each split separately (fused QKV: 3).
  int blocks = 1;

  bool replicated() const { return split_dim < 0 || num_shards == 1; }
  // The same spec with a replicated one written canonically (split_dim -1,
  // one shard), so that equal placements compare equal.
  ShardSpec Canonical() const;
};

// The rank-local tensor's shape; INVALID_ARGUMENT when the spec is
// inconsistent (split_dim outside the shape, a dim not divisible by
// num_shards * blocks, shard_index outside [0, num_shards), blocks < 1).
absl::StatusOr<std::vector<int64_t>> LocalShape(const ShardSpec& spec);

// A maximal run of consecutive local elements that are consecutive globally.
struct FlatRun {
  int64_t local = 0;   // first element, flat index into the local tensor
  int64_t global = 0;  // its flat index into the global tensor
  int64_t length = 0;
  bool operator==(const FlatRun&) const = default;
};

// Elements [offset, offset + length) of the local tensor as global runs, in
// local order. INVALID_ARGUMENT for an inconsistent spec or a range outside
// the local tensor.
absl::StatusOr<std::vector<FlatRun>> GlobalRuns(const ShardSpec& spec, int64_t offset,
                                                int64_t length);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_GLOBAL_WINDOW_H_
