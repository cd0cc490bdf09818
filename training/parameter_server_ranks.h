#ifndef TRIDENT_TRAINING_PARAMETER_SERVER_RANKS_H_
#define TRIDENT_TRAINING_PARAMETER_SERVER_RANKS_H_

// The ranks of a dp_sync=ps job (data_parallel/sync_modes/parameter_server.h):
// the W = tp x pp x dp workers (tp = pp = 1 under ps) are world ranks [0, W)
// and train as the dp ranks of their grid; the ps_servers server ranks
// [W, W + N) hold the fp32 parameters and AdamW's moments, a window each,
// and run the server loop for the whole run. What the trainer does over the
// world (paths, loss, memory report, stop signal) runs over a communicator of
// the workers only, so the servers never build a model for activations, read
// data or print.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "core/parameter.h"
#include "data_parallel/sync_modes/parameter_server.h"
#include "topology/layout.pb.h"
#include "training/train_config.pb.h"

namespace trident::training {

// tp x pp x dp, plus ps_servers under dp_sync=ps: the ranks the job launches.
int JobWorldSize(const topology::ParallelLayout& layout);

// Whether world rank `rank` of the job is a parameter server.
bool IsParameterServerRank(const topology::ParallelLayout& layout, int rank);

// The protocol's options of a (validated) ps config: W workers, N servers,
// staleness, the config's grad_clip, and `steps` clocks: the steps this run
// trains (fewer than config.steps() when it stops early; the learning rate
// schedule still spans config.steps()).
data_parallel::PsOptions PsOptionsFor(const TrainConfig& config, int64_t steps);

// What the launcher is told the job's world is made of, for its message on a
// wrong process count: "tp x pp x dp", or under ps
// "tp x pp x dp workers + ps_servers = 4 + 2".
std::string JobWorldRule(const topology::ParallelLayout& layout);

// The flat vector's segments: one per parameter, in the given order (the
// order the workers pack their gradients and values in), with its weight
// decay flag.
std::vector<data_parallel::PsSegment> PsSegmentsOf(const ParameterList& params);

// A worker's communicator of the W workers (worker w its rank w), made from
// the job's world. Called by every worker rank and by no server.
absl::StatusOr<std::unique_ptr<comm::Communicator>> CreateWorkerGroup(
    const topology::ParallelLayout& layout, comm::Communicator& world);

// A server rank's whole job: its window of the values and AdamW's moments,
// the first step and the steps to run, from worker 0
// (StepRunner::StartParameterServers: fresh from the seed, or a checkpoint's
// state), then PsServer::Serve until every worker pulled its last
// parameters. The learning rate of step s is LearningRate(s, ...), the
// trainer's; clipping uses the servers' own communicator (made here, by the
// server ranks only).
absl::Status ServeParameters(const TrainConfig& config, comm::Communicator& world);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_PARAMETER_SERVER_RANKS_H_
