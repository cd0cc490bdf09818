#ifndef TRIDENT_TRAINING_DEFERRED_STEP_REDUCTIONS_H_
#define TRIDENT_TRAINING_DEFERRED_STEP_REDUCTIONS_H_

// The reductions every training step needs across the data-parallel workers
// besides the gradients: the step's loss (summed over the replicas for the
// progress line and metrics) and the stop-signal agreement (the largest
// signal number any worker saw). Blocking, they make every worker meet every
// step. Under dp_sync=ps with staleness S > 0 that meeting is the barrier the
// parameter servers exist to avoid, so the trainer runs them here instead:
// started nonblocking after step t and completed after step t + S (or when
// drained), in step order. A worker then waits only when some worker has
// not finished step t yet while it finishes step t + S: it is more than S
// steps ahead, which the servers' pulls already forbid
// (data_parallel/sync_modes/parameter_server.h). Every worker completes the
// same steps' reductions after the same step, so all act on a stop signal
// at the same step.
//
// Every worker issues the same sequence of Start/Complete calls; the
// collectives then pair up in order on each communicator, as the
// communicator's semantics require (core/comm/communicator.h).

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"

namespace trident::training {

// The replicas' loss sums, each passed as its double's bits (int64, so that
// gathering them is exact), added in replica order: the same sum, to the
// bit, on every rank (StepRunner::ShareLoss adds them the same way).
double SumReplicaLosses(absl::Span<const int64_t> loss_bits);

class DeferredStepReductions {
 public:
  // A step whose reductions completed.
  struct Completed {
    int64_t step = 0;     // 0-based.
    double loss_sum = 0;  // Summed over the replicas (SumReplicaLosses).
    int stop_signal = 0;  // The largest signal number any worker saw; 0: none.
  };

  // `replicas`: the group the loss is summed over (the dp group); `workers`:
  // the group that agrees on the stop signal (every worker); both must
  // outlive this. `lag`: S, the steps a reduction stays pending (>= 0; 0
  // completes each step's reductions at once, as blocking ones would).
  DeferredStepReductions(comm::Communicator& replicas, comm::Communicator& workers, int lag);
  // Waits for whatever is still pending (dropping the results).
  ~DeferredStepReductions() = default;

  // Starts step `step`'s reductions: this replica's loss sum and the signal
  // this worker has seen (0: none). Steps must be started in increasing order.
  void Start(int64_t step, double replica_loss_sum, int32_t stop_signal);

  // Completes, in step order, the pending reductions that are due after
  // step `step`: those of steps <= step - lag.
  absl::StatusOr<std::vector<Completed>> CompleteDue(int64_t step);
  // Completes every pending reduction, in step order (before a checkpoint or
  // an evaluation, and at the end of the run).
  absl::StatusOr<std::vector<Completed>> CompleteAll();

  int lag() const { return lag_; }
  int64_t pending() const { return static_cast<int64_t>(pending_.size()); }

 private:
  struct Pending {
    int64_t step = 0;
    int64_t loss_bits = 0;
    std::vector<int64_t> gathered;  // One per replica.
    int32_t stop_signal = 0;
    std::unique_ptr<comm::CommHandle> loss;
    std::unique_ptr<comm::CommHandle> signal;
  };
  // Completes pending reductions of steps <= `last` (all when last is the max).
  absl::StatusOr<std::vector<Completed>> CompleteThrough(int64_t last);

  comm::Communicator& replicas_;
  comm::Communicator& workers_;
  const int lag_;
  // Heap-allocated so the buffers stay put while the collectives own them.
  std::deque<std::unique_ptr<Pending>> pending_;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_DEFERRED_STEP_REDUCTIONS_H_
