#ifndef TRIDENT_PIPELINE_EXECUTOR_H_
#define TRIDENT_PIPELINE_EXECUTOR_H_

// Runs one stage's action list of a Schedule (DESIGN.md rule 6: the list the
// checker proved is the list that runs) against a PipelineStage, moving
// activations and gradients over the pipeline communicator.
//
// Transfers follow the simulator's model (simulator.h), which the checker
// proved deadlock-free for the list:
// - A SEND is asynchronous: it is issued and not waited for before the end of
//   the step (but see batching below). The sent tensor is kept alive until then.
// - A RECV blocks until its data is there. To overlap the transfer with
//   compute, the receive of the next RECV in the list is posted ahead (one
//   receive in flight, in list order, so messages of one kind between two
//   stages still match in order): before each compute action, or, when the
//   compute action is followed by SENDs, together with them.
// - Transfers that start together start as one batch
//   (Communicator::BatchSendRecvAsync, as Megatron's send_forward_recv_backward):
//   the SENDs right after a compute action and the receive posted next. The
//   RECV of that receive then waits for the whole batch, i.e. also until its
//   sends were taken by their peers. That extra wait cannot deadlock in
//   non-interleaved schedules (each stage sends one kind of message to each
//   neighbour, which posts its receives in send order without waiting for
//   anything later); interleaved schedules batch the SENDs only and post
//   receives before compute. With the local backend sends complete when issued.
// Activations use tag 0 and gradients tag 1 on the pp communicator, whose ranks
// are the stages. Hand-offs between two chunks of one stage (p = 1 with v > 1)
// stay in memory.
//
// Every action can be stamped (start and end on a clock shared by all stages of
// the process), which is what the bubble profiler records.

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "pipeline/schedule.h"
#include "pipeline/stage.h"
#include "pipeline/simulator.h"

namespace trident::pipeline {

struct ExecutorOptions {
  // When set, timings[i] receives action i's [start, end] in seconds after
  // `epoch` (wall clock). RECV actions span the wait for their data.
  std::vector<ActionTiming>* timings = nullptr;
  absl::Time epoch = absl::InfinitePast();
  // When set, cpu_seconds[i] receives the CPU time the calling thread spent
  // in action i (0 for transfers): the work of a compute action without the
  // time its thread waited for a core that other ranks were using. The bubble
  // profiler replays with it when ranks share cores.
  std::vector<double>* cpu_seconds = nullptr;
};

// Runs `schedule.stages[stage_index]` on `stage`. `pp` is the pipeline
// communicator (rank = stage index, size = num_stages); it may be null when the
// schedule has one stage. Every stage of the pipeline calls this with the same
// schedule at the same step. Returns the first error of a pass or transfer,
// naming the action.
absl::Status RunStageSchedule(const Schedule& schedule, int stage_index, PipelineStage& stage,
                              comm::Communicator* pp, const ExecutorOptions& options = {});

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_EXECUTOR_H_
