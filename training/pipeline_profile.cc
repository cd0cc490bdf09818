#include "training/pipeline_profile.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "pipeline/simulator.h"
#include "topology/grid_communicators.h"
#include "topology/process_grid.h"
#include "topology/layout_validation.h"
#include "training/batch_geometry.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/train_config.h"
#include "training/trainer.h"

namespace trident::training {

absl::StatusOr<PipelineProfile> ProfilePipeline(const PipelineProfileOptions& options) {
  if (options.warmup_steps < 0 || options.profile_steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "warmup_steps=", options.warmup_steps, " must be >= 0 and profile_steps=",
        options.profile_steps, " >= 1"));
  }
  TrainConfig config = options.config;
  RETURN_IF_ERROR(topology::DeriveMicroBatches(config.mutable_layout()));
  const int total_steps = options.warmup_steps + options.profile_steps;
  config.set_steps(total_steps);
  RETURN_IF_ERROR(ValidateTrainConfig(config));
  TrainOptions train_options;
  train_options.config = config;
  RETURN_IF_ERROR(CheckSupported(train_options));

  const topology::ParallelLayout& layout = config.layout();
  const int p = layout.pipeline_parallel();
  const int world_size = layout.tensor_parallel() * p * layout.data_parallel();
  ASSIGN_OR_RETURN(const topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(layout, world_size));
  const BatchGeometry batch = BatchGeometry::Of(config);

  PipelineProfile profile;
  profile.threads_per_rank = CpuThreadsPerRank(world_size);
  profile.replay_source = profile.threads_per_rank == 1 ? "thread CPU time" : "wall time";
  profile.peak_stash_bytes.assign(p, 0);
  // [profiled step][stage]
  std::vector<pipeline::StageTimings> wall(options.profile_steps, pipeline::StageTimings(p));
  std::vector<std::vector<std::vector<double>>> cpu(options.profile_steps,
                                                    std::vector<std::vector<double>>(p));
  std::vector<absl::Time> epochs(total_steps);
  std::mutex mu;

  RETURN_IF_ERROR(comm::RunLocalRanks(world_size, [&](int rank, comm::Communicator& world) {
    const ExecContext ctx = ExecContext::Cpu(profile.threads_per_rank);
    ASSIGN_OR_RETURN(const topology::GridCommunicators comms,
                     topology::BuildGridCommunicators(grid, world));
    ASSIGN_OR_RETURN(std::unique_ptr<StepRunner> runner,
                     StepRunner::Create(config, grid, rank, comms, ctx));
    const topology::Coordinates at = grid.CoordinatesOf(rank);
    Tensor inputs, targets;
    for (int step = 0; step < total_steps; ++step) {
      SyntheticRows(static_cast<uint64_t>(config.seed()), step, batch.ReplicaRows(at.dp),
                    batch.seq_length, config.model().vocab_size(), &inputs, &targets);
      // Every stage starts the step at one instant, the zero of its stamps.
      RETURN_IF_ERROR(world.Barrier());
      if (rank == 0) epochs[step] = absl::Now();
      RETURN_IF_ERROR(world.Barrier());
      StepProfile step_profile;
      step_profile.epoch = epochs[step];
      RETURN_IF_ERROR(runner->TrainStep(step, inputs, targets, batch.tokens_per_step(), &step_profile).status());
      const int profiled = step - options.warmup_steps;
      if (profiled < 0 || at.dp != 0 || at.tp != 0) continue;
      std::lock_guard<std::mutex> lock(mu);
      wall[profiled][at.pp] = std::move(step_profile.timings);
      cpu[profiled][at.pp] = std::move(step_profile.cpu_seconds);
      profile.peak_stash_bytes[at.pp] =
          std::max(profile.peak_stash_bytes[at.pp], step_profile.peak_stash_bytes);
    }
    return absl::OkStatus();
  }));

  // The step with the median makespan.
  std::vector<int> order(options.profile_steps);
  std::iota(order.begin(), order.end(), 0);
  for (int i = 0; i < options.profile_steps; ++i) {
    profile.step_seconds.push_back(pipeline::Makespan(wall[i]));
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return profile.step_seconds[a] < profile.step_seconds[b];
  });
  const int chosen = order[options.profile_steps / 2];

  ASSIGN_OR_RETURN(profile.schedule, StepRunner::MakeLayoutSchedule(layout));
  profile.wall = wall[chosen];
  // Each action's duration is its median over the profiled steps: one
  // preempted or cache-cold action does not move the whole replay.
  std::vector<std::vector<double>> durations(p);
  for (int s = 0; s < p; ++s) {
    durations[s].resize(profile.schedule.stages[s].size());
    for (size_t i = 0; i < durations[s].size(); ++i) {
      std::vector<double> samples;
      for (int k = 0; k < options.profile_steps; ++k) {
        samples.push_back(profile.threads_per_rank == 1
                              ? cpu[k][s][i]
                              : wall[k][s][i].end - wall[k][s][i].start);
      }
      std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
      durations[s][i] = pipeline::IsCompute(profile.schedule.stages[s][i].kind)
                            ? samples[samples.size() / 2]
                            : 0.0;
    }
  }
  ASSIGN_OR_RETURN(const pipeline::SimulationResult replay,
                   pipeline::ReplaySchedule(profile.schedule, durations));
  profile.replayed = replay.timings;
  ASSIGN_OR_RETURN(profile.report,
                   pipeline::MakeBubbleReport(profile.schedule, profile.wall, profile.replayed));
  return profile;
}

}  // namespace trident::training
