#ifndef TRIDENT_DATA_PARALLEL_SYNC_MODES_REPLICA_SYNC_H_
#define TRIDENT_DATA_PARALLEL_SYNC_MODES_REPLICA_SYNC_H_

// How data-parallel replicas keep their parameters together (the layout's
// dp_sync, topology/layout.proto). Not equal to serial training by design.
//
//   sync       gradients are summed over dp every step (GradientSync); the
//              replicas stay identical; nothing happens here.
//   local_sgd  (Stich 2019; Lin et al. 2020) no gradient sum: each replica
//              steps alone on the mean gradient of its own rows, and every
//              local_sgd_steps = H steps the replicas' parameters are
//              averaged: x <- (1/n) sum_r x_r, an all-reduce of 4 P bytes
//              (dp_allreduce picks the algorithm), ring cost 2 (n-1)/n 4 P
//              bytes sent per rank, i.e. that over H per step. AdamW's
//              moments are kept local (not averaged): averaging them would
//              double the traffic, and after an average every replica
//              restarts from the same point with its own history, as in
//              "post-local SGD" and DiLoCo's inner optimizers.
//   gossip     no gradient sum: each replica steps alone and then mixes its
//              parameters with its ring neighbours (gossip.h: weights 1/3,
//              1/2 for n = 2), point to point: 8 P bytes sent per rank and
//              step (4 P for n = 2). Replicas agree only approximately.
// P is the number of fp32 parameter elements of this rank (its tp/pp shard).
// Under mixed precision the replicas mix the optimizer's fp32 masters (the
// values AdamW updates), and the caller rounds them into the 16-bit values
// afterwards: mixing the 16-bit copies would be overwritten by the next
// rounding of unmixed masters.

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/tensor.h"

namespace trident::data_parallel {

enum class DpSyncMode : uint8_t { kSync, kLocalSgd, kGossip };

struct ReplicaSyncOptions {
  DpSyncMode mode = DpSyncMode::kSync;
  // local_sgd: average every this many steps (>= 1).
  int local_sgd_steps = 1;
  // local_sgd: the all-reduce that averages the parameters.
  comm::AllReduceAlgorithm algorithm = comm::AllReduceAlgorithm::kNative;
};

class ReplicaSync {
 public:
  // `values` are the fp32 host tensors this rank mixes, in place: its
  // parameters' values, or under mixed precision the optimizer's fp32 masters
  // (AdamW::Fp32Values). AfterStep refuses any other dtype.
  ReplicaSync(const ReplicaSyncOptions& options, std::vector<Tensor> values)
      : options_(options), values_(std::move(values)) {}

  // Whether the mode sums gradients over dp (only sync does).
  bool sums_gradients() const { return options_.mode == DpSyncMode::kSync; }

  // Whether AfterStep(step) moves parameters: local SGD after steps H, 2H,
  // ... (1-based), gossip after every step, sync never.
  bool MixesAfter(int64_t step) const;

  // Called by every replica after its optimizer step `step` (0-based).
  absl::Status AfterStep(comm::Communicator& dp, int64_t step);

  const ReplicaSyncOptions& options() const { return options_; }

 private:
  // Copies the parameters into flat_ (one message per step, not one per
  // tensor) and back.
  void Pack();
  void Unpack();

  ReplicaSyncOptions options_;
  std::vector<Tensor> values_;
  std::vector<float> flat_;
  std::vector<float> scratch_;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_SYNC_MODES_REPLICA_SYNC_H_
