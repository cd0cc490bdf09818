#ifndef TRIDENT_PIPELINE_SIMULATOR_H_
#define TRIDENT_PIPELINE_SIMULATOR_H_

// Checks a Schedule by running all its stages together, and replays it in time
// as if every stage had a device of its own.
//
// Execution model: each stage runs its actions strictly in list order. A
// compute action runs once its inputs exist:
//   F(mb, k) needs F(mb, k - 1)              (k = model chunk, 0 <= k < p * v)
//   B(mb, k) needs F(mb, k) and B(mb, k + 1) (the last chunk: F(mb, k) only)
//   W(mb, k) needs B(mb, k)
// An input produced on another stage counts as present only after this stage
// executed the RECV that brought it. A SEND needs its F/B done on this stage and
// never blocks (buffered). A RECV blocks until the peer's matching SEND was
// issued; on each (sender, receiver, activation|gradient) channel the k-th
// RECV must match the k-th SEND (same micro-batch, adjacent model chunk).
//
// Timing: F, B and W take the durations given; a SEND takes no time on its
// stage and its data arrives `comm_latency` later; a RECV ends when the data
// has arrived (waiting counts as idle). All stages start at time 0.
//
// Bubble fractions the replay reproduces exactly (simulator_test checks every
// p in 1..8, m in 1..16, v in {1, 2, 4}); bubble fraction = idle / makespan:
//   FusedBackward() (F = 1, B = 2, W = 0, the published assumption):
//     GPipe, 1F1B: (p - 1) / (m + p - 1)
//     interleaved: (p - 1) / (v m + p - 1), i.e. Megatron's idle / ideal time
//                  (p - 1) / (v m)
//   Unit() (F = B = W = 1, the zero-bubble paper's setting):
//     GPipe, 1F1B, interleaved: makespan 3 v m + 2 (p - 1) (W is off the
//                  critical path even when it follows B at once)
//     ZB-H1: makespan 3 m + p - 1 for m >= p, bubble (p - 1) / (3 m + p - 1):
//                  idle p - 1, one third of fused 1F1B's 3 (p - 1);
//            makespan 2 m + 2 p - 1 for m < p.

#include <vector>

#include "absl/status/statusor.h"
#include "pipeline/schedule.h"

namespace trident::pipeline {

struct ActionDurations {
  double forward = 1.0;
  double backward_input = 1.0;
  double backward_weight = 1.0;
  double comm_latency = 0.0;

  // F = B = W = 1, free transfers: the zero-bubble paper's unit setting.
  static ActionDurations Unit() { return {}; }
  // F = 1, B = 2 (input and weight gradient together), W = 0: the classic
  // t_b = 2 t_f assumption behind (p - 1) / (m + p - 1).
  static ActionDurations FusedBackward() { return {1.0, 2.0, 0.0, 0.0}; }
};

struct ActionTiming {
  double start = 0.0;
  double end = 0.0;
};

struct SimulationResult {
  // Peak number of (micro-batch, chunk) pairs whose F ran and whose W has not,
  // per stage: the activations the stage must hold at once.
  std::vector<int> peak_in_flight;
  // Peak number of pairs whose F ran and whose B has not, per stage.
  std::vector<int> peak_awaiting_backward;
  // timings[s][i] belongs to schedule.stages[s][i].
  std::vector<std::vector<ActionTiming>> timings;
  double makespan = 0.0;
  // Per stage: time spent in F, B and W.
  std::vector<double> busy;
  // Per stage: (makespan - busy) / makespan; 0 when the makespan is 0.
  std::vector<double> bubble_fraction;
};

// Simulates `schedule` with `durations`. Returns an error naming the stage and
// the action when the schedule is malformed (indices out of range, an action
// run twice, a send of data not produced yet, a send or receive with the wrong
// peer, a receive that does not match the next message on its channel), when
// it deadlocks (every unfinished stage waits: each stuck stage, its next action
// and what it waits for), or when it is incomplete (an F, B or W never run, a
// message never received).
absl::StatusOr<SimulationResult> SimulateSchedule(const Schedule& schedule,
                                                  const ActionDurations& durations);

// SimulateSchedule with a duration per action: action_durations[s][i] is how
// long compute action i of stage s takes (entries of transfers are ignored).
// The bubble profiler replays a measured step with it, as if every stage had a
// device of its own. INVALID_ARGUMENT when the shape does not match the
// schedule or a duration is negative or not finite.
absl::StatusOr<SimulationResult> ReplaySchedule(
    const Schedule& schedule, const std::vector<std::vector<double>>& action_durations,
    double comm_latency = 0.0);

// SimulateSchedule with unit durations: the checker.
absl::StatusOr<SimulationResult> CheckSchedule(const Schedule& schedule);

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_SIMULATOR_H_
