#ifndef TRIDENT_TRAINING_PIPELINE_PROFILE_H_
#define TRIDENT_TRAINING_PIPELINE_PROFILE_H_

// The bubble profiler's measurement: runs real training steps of a layout on
// the local backend (ranks are threads of this process, sharing one clock),
// stamps every action of every stage, and replays the schedule with the
// measured durations as if every stage had a device of its own (DESIGN.md,
// "Observability"). //tools:bubble_profile and bench/pipeline_bench print and
// write what it returns.
//
// Ranks usually outnumber the cores here, so a rank's wall-clock action time
// includes waiting for a core. With one compute thread per rank the replay
// therefore uses each action's thread CPU time (the work itself); with more
// threads per rank (their helpers' CPU time is not the calling thread's) it
// uses wall-clock durations. Each action's replayed duration is its median over
// the profiled steps. The tokens are synthetic (a hash of seed, step
// and position): the time of a step does not depend on their values.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pipeline/profile_report.h"
#include "pipeline/schedule.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct PipelineProfileOptions {
  TrainConfig config;  // Model, layout (any tp x pp x dp), optimizer, seed.
  int warmup_steps = 2;
  int profile_steps = 3;  // The step with the median makespan is reported.
};

struct PipelineProfile {
  pipeline::Schedule schedule;
  // The profiled step with the median makespan on the wall clock, and the
  // replay (per-action median durations).
  pipeline::StageTimings wall;
  pipeline::StageTimings replayed;
  pipeline::BubbleReport report;
  // "thread CPU time" or "wall time": what the replay's durations are.
  std::string replay_source;
  int threads_per_rank = 1;
  // Per stage: the most activation bytes held at once (over profiled steps).
  std::vector<int64_t> peak_stash_bytes;
  // Wall time of each profiled step, seconds.
  std::vector<double> step_seconds;
};

// Validates the config as the trainer does (errors name the field), then
// runs warmup_steps + profile_steps steps.
absl::StatusOr<PipelineProfile> ProfilePipeline(const PipelineProfileOptions& options);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_PIPELINE_PROFILE_H_
