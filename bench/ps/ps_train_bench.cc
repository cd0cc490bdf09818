// The parameter server in the trainer against stragglers: the default model
// (configs/default.textproto) trained by `Train` under --dp_sync=ps at
// tp = pp = 1, dp = --workers, with --servers server ranks, on the local
// backend. Every step one worker, drawn at random per step (seeded, the same
// draw for every run) or --straggler every step, is a straggler: it sleeps
// --straggler_ms after that step (TrainOptions::after_step_for_testing; no trainer flag does this).
// With S = 0 every step waits for its straggler; with S > 0 the workers meet
// only through the servers and the delays average out, as in ps_bench.
// Prints, per repeat, the wall time of --steps steps at S = 0 and at S =
// --staleness, run back to back (interleaved, so the machine's load hits
// both alike), and their ratio; then the range of the ratios.
//
// Run from the repository root (the default config's data/brown paths):
//   bazel-bin/bench/ps/ps_train_bench --workers=4 --servers=1

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "topology/layout.pb.h"
#include "training/default_config.h"
#include "training/trainer.h"

ABSL_FLAG(int, workers, 4, "worker ranks (dp)");
ABSL_FLAG(int, servers, 1, "server ranks");
ABSL_FLAG(int, staleness, 2, "the staleness bound compared with S = 0");
ABSL_FLAG(int64_t, steps, 50, "steps per run");
ABSL_FLAG(double, straggler_ms, 100.0, "the straggler's extra time per step");
ABSL_FLAG(int, straggler, -1,
          "the worker that straggles every step; -1: one drawn at random per step");
ABSL_FLAG(int, repeats, 3, "S = 0 / S = staleness pairs, run one after the other");
ABSL_FLAG(int, threads, 1, "compute threads per worker");

namespace trident::training {
namespace {

absl::StatusOr<double> SecondsToTrain(int staleness, int64_t steps,
                                      const std::vector<int>& straggler) {
  ASSIGN_OR_RETURN(TrainConfig config, DefaultTrainConfig());
  config.set_steps(steps);
  config.set_eval_interval(0);
  config.set_checkpoint_interval(0);
  topology::ParallelLayout& layout = *config.mutable_layout();
  layout.set_tensor_parallel(1);
  layout.set_pipeline_parallel(1);
  layout.set_data_parallel(absl::GetFlag(FLAGS_workers));
  layout.clear_num_micro_batches();
  layout.set_dp_sync(topology::DpSync::PS);
  layout.set_ps_servers(absl::GetFlag(FLAGS_servers));
  layout.set_ps_staleness(staleness);
  TrainOptions options;
  options.config = config;
  options.save_dir = "";
  options.threads = absl::GetFlag(FLAGS_threads);
  std::ostringstream log;
  options.log = &log;
  const absl::Duration delay = absl::Milliseconds(absl::GetFlag(FLAGS_straggler_ms));
  options.after_step_for_testing = [&straggler, delay](int rank, int64_t step) {
    if (step < static_cast<int64_t>(straggler.size()) && straggler[step] == rank) {
      absl::SleepFor(delay);
    }
  };
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(Train(options).status());
  return absl::ToDoubleSeconds(absl::Now() - start);
}

absl::Status Run() {
  const int64_t steps = absl::GetFlag(FLAGS_steps);
  const int staleness = absl::GetFlag(FLAGS_staleness);
  std::mt19937 rng(12345);
  std::vector<int> straggler(steps);
  for (int& s : straggler) s = static_cast<int>(rng() % absl::GetFlag(FLAGS_workers));
  if (absl::GetFlag(FLAGS_straggler) >= 0) {
    std::fill(straggler.begin(), straggler.end(), absl::GetFlag(FLAGS_straggler));
  }
  // Prepares the token files (when missing) and warms the caches, untimed.
  RETURN_IF_ERROR(SecondsToTrain(0, 2, {}).status());
  const int fixed = absl::GetFlag(FLAGS_straggler);
  const std::string who = fixed >= 0 ? absl::StrCat("worker ", fixed, " straggling every step")
                                     : "a random straggler per step";
  std::printf("ps in the trainer: default model, %d workers, %d servers, %lld steps, %s +%.0f ms\n",
              absl::GetFlag(FLAGS_workers), absl::GetFlag(FLAGS_servers),
              static_cast<long long>(steps), who.c_str(), absl::GetFlag(FLAGS_straggler_ms));
  std::vector<double> ratios;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    ASSIGN_OR_RETURN(const double sync_seconds, SecondsToTrain(0, steps, straggler));
    ASSIGN_OR_RETURN(const double stale_seconds, SecondsToTrain(staleness, steps, straggler));
    ratios.push_back(stale_seconds / sync_seconds);
    std::printf("repeat %d: S=0 %.2f s, S=%d %.2f s, ratio %.3f\n", r + 1, sync_seconds, staleness,
                stale_seconds, ratios.back());
    std::fflush(stdout);
  }
  std::printf("S=%d / S=0 wall time: %.3f - %.3f over %zu repeats\n", staleness,
              *std::min_element(ratios.begin(), ratios.end()),
              *std::max_element(ratios.begin(), ratios.end()), ratios.size());
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident::training

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::training::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
