// Sweeps the parallel layouts of a job on N ranks at a fixed global batch:
// lists every layout (invalid ones with the trainer's own refusal), predicts
// each with the planner and, unless --predict, trains each candidate (or the
// --top_n best predicted) for --steps steps on this machine (local backend, or
// --backend=mpi: under mpirun, one process per rank) and measures it. See
// tools/sweep_lib.h for the space and the outputs.
//
//   bazel run //tools:sweep -- --world_size=8 --global_batch_size=8
//       [--config=FILE] [--predict] [--hardware=FILE] [--memory_budget_gb=X]
//       [--steps=K] [--out_dir=DIR] [--top_n=N] [--zero_stages=0,1,2,3]
//       [--recompute_policies=none,selective,full] [--threads=T]
//       [--gradient_compressions=none,bf16,topk,int8] [--max_tp=T] [--max_pp=P]
//       [--max_dp=D] [--max_micro_batch_size=M] [--schedules=gpipe,1f1b,...]
//       [--precision=fp32|bf16|fp16] [--backend=local|mpi] [--train_binary=FILE]
//
// Bounds of the space: tp x pp x dp = N (all factorisations), every
// micro-batch size dividing the per-replica batch, every schedule when pp > 1
// (gpipe, 1f1b, interleaved with v = 2..layers/pp, zb-h1; 1f1b alone when
// pp = 1, where they coincide), sequence parallelism off
// and on (tp > 1). ZeRO stage and recomputation stay at the config's values
// unless --zero_stages / --recompute_policies list the values to sweep (each
// multiplies the space, and the runs with it). Real runs can be limited to the
// best --top_n predicted layouts; --predict ranks everything at any scale.
//
// Outputs in --out_dir (default out/sweep): results.csv, results.md,
// chart.svg, best_layout.textproto (accepted by //tools:train --config) and
// runs/<layout>.jsonl. Started again over the same --out_dir, the sweep skips
// the layouts its results.csv already holds.

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/io/user_path.h"
#include "planning/planner.h"
#include "tools/sweep_lib.h"
#include "topology/layout_names.h"
#include "training/default_config.h"
#include "training/train_config.h"

ABSL_FLAG(int, world_size, 0, "ranks of the job (tp x pp x dp)");
ABSL_FLAG(int, global_batch_size, 0, "sequences per step, the same for every layout");
ABSL_FLAG(std::string, config, "", "TrainConfig textproto; the embedded default job when empty");
ABSL_FLAG(bool, predict, false, "rank by the planner only, run nothing (any scale)");
ABSL_FLAG(std::string, hardware, "",
          "Hardware textproto the planner predicts for (default: this machine's, "
          "configs/hardware/cpu_2core.textproto, or cpu_2core_mpi.textproto with --backend=mpi)");
ABSL_FLAG(std::string, precision, "fp32",
          "fp32, bf16 or fp16: the precision the planner models (as //tools:plan --precision)");
ABSL_FLAG(double, memory_budget_gb, 0, "per-rank memory budget in GB (0: none)");
ABSL_FLAG(int, steps, 3, "training steps per layout (the mean is over the steps after the first)");
ABSL_FLAG(std::string, out_dir, "out/sweep", "output directory");
ABSL_FLAG(int, top_n, 0, "run only the N best predicted layouts (0: all)");
ABSL_FLAG(std::string, zero_stages, "",
          "comma-separated ZeRO stages to sweep (empty: the config's stage)");
ABSL_FLAG(std::string, recompute_policies, "",
          "comma-separated recomputation policies to sweep: none, selective, full "
          "(empty: the config's)");
ABSL_FLAG(std::string, gradient_compressions, "",
          "comma-separated gradient compression methods to sweep: none, bf16, topk, int8 "
          "(empty: the config's; the trainer refuses all but none so far, so runs list them "
          "invalid with its message, --predict plans them)");
ABSL_FLAG(int, max_tp, 0, "largest tensor-parallel degree to enumerate (0: no limit)");
ABSL_FLAG(int, max_pp, 0, "largest pipeline-parallel degree to enumerate (0: no limit)");
ABSL_FLAG(int, max_dp, 0, "largest data-parallel degree to enumerate (0: no limit)");
ABSL_FLAG(int, max_micro_batch_size, 0, "largest micro-batch size to enumerate (0: no limit)");
ABSL_FLAG(std::string, schedules, "",
          "comma-separated pipeline schedules to enumerate with pp > 1: gpipe, 1f1b, "
          "interleaved, zb-h1 (empty: all)");
ABSL_FLAG(int, threads, 0, "compute threads per rank of each run (0: the trainer's default)");
ABSL_FLAG(std::string, backend, "local",
          "local (each run's ranks are threads of this process) or mpi (each run under mpirun, "
          "one process per rank), as //tools:train --backend");
ABSL_FLAG(std::string, train_binary, "",
          "the //tools:train binary mpirun starts with --backend=mpi (default: the train binary "
          "next to this one)");
ABSL_FLAG(std::string, mpirun, "mpirun", "the MPI launcher for --backend=mpi");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace trident;
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "sweep: %s\n", std::string(status.message()).c_str());
    return 1;
  };
  tools::SweepOptions options;
  options.space.world_size = absl::GetFlag(FLAGS_world_size);
  options.space.global_batch_size = absl::GetFlag(FLAGS_global_batch_size);
  if (options.space.world_size < 1 || options.space.global_batch_size < 1) {
    return fail(absl::InvalidArgumentError(
        "--world_size=N and --global_batch_size=B are required (both >= 1)"));
  }
  for (absl::string_view z : absl::StrSplit(absl::GetFlag(FLAGS_zero_stages), ',',
                                            absl::SkipWhitespace())) {
    int stage = 0;
    if (!absl::SimpleAtoi(z, &stage) || stage < 0 || stage > 3) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("--zero_stages: '", z, "' is not a ZeRO stage 0..3")));
    }
    options.space.zero_stages.push_back(stage);
  }
  for (absl::string_view r : absl::StrSplit(absl::GetFlag(FLAGS_recompute_policies), ',',
                                            absl::SkipWhitespace())) {
    auto policy = topology::ParseRecomputeName(r);
    if (!policy.ok()) return fail(policy.status());
    options.space.recompute.push_back(*policy);
  }
  for (absl::string_view c : absl::StrSplit(absl::GetFlag(FLAGS_gradient_compressions), ',',
                                            absl::SkipWhitespace())) {
    auto method = topology::ParseCompressionName(c);
    if (!method.ok()) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("--gradient_compressions: ", method.status().message())));
    }
    options.space.compressions.push_back(*method);
  }
  options.space.max_tp = absl::GetFlag(FLAGS_max_tp);
  options.space.max_pp = absl::GetFlag(FLAGS_max_pp);
  options.space.max_dp = absl::GetFlag(FLAGS_max_dp);
  options.space.max_micro_batch_size = absl::GetFlag(FLAGS_max_micro_batch_size);
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_schedules), ',',
                                               absl::SkipWhitespace())) {
    auto schedule = topology::ParseScheduleName(name);
    if (!schedule.ok()) {
      return fail(absl::InvalidArgumentError(
          absl::StrCat("--schedules: ", schedule.status().message())));
    }
    options.space.schedules.push_back(*schedule);
  }
  absl::StatusOr<training::TrainConfig> config =
      absl::GetFlag(FLAGS_config).empty()
          ? training::ParseTrainConfig(training::DefaultTrainConfigText(),
                                       "<embedded default config>")
          : training::LoadTrainConfig(io::ResolveUserPath(absl::GetFlag(FLAGS_config)));
  if (!config.ok()) return fail(config.status());
  std::string hardware_path = absl::GetFlag(FLAGS_hardware);
  if (hardware_path.empty()) {
    hardware_path = absl::GetFlag(FLAGS_backend) == "mpi"
                        ? "configs/hardware/cpu_2core_mpi.textproto"
                        : "configs/hardware/cpu_2core.textproto";
  }
  auto hardware = planning::LoadHardware(io::ResolveUserPath(hardware_path));
  if (!hardware.ok()) return fail(hardware.status());
  options.hardware = *hardware;
  auto precision = planning::ParsePrecision(absl::GetFlag(FLAGS_precision));
  if (!precision.ok()) return fail(precision.status());
  options.precision = *precision;
  options.predict = absl::GetFlag(FLAGS_predict);
  options.memory_budget_bytes = absl::GetFlag(FLAGS_memory_budget_gb) * 1e9;
  options.steps = absl::GetFlag(FLAGS_steps);
  options.top_n = absl::GetFlag(FLAGS_top_n);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.backend = absl::GetFlag(FLAGS_backend);
  options.mpirun = absl::GetFlag(FLAGS_mpirun);
  options.train_binary = absl::GetFlag(FLAGS_train_binary);
  if (options.train_binary.empty()) {
    // Bazel puts //tools:train next to //tools:sweep.
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) options.train_binary = (self.parent_path() / "train").string();
  } else {
    options.train_binary = io::ResolveUserPath(options.train_binary);
  }
  if (options.backend == "mpi" && !options.predict &&
      !std::filesystem::exists(options.train_binary)) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "--backend=mpi: no //tools:train binary at ", options.train_binary,
        " (build //tools:train or pass --train_binary)")));
  }
  options.out_dir = io::ResolveUserPath(absl::GetFlag(FLAGS_out_dir));

  auto summary = tools::RunSweep(*config, options);
  if (!summary.ok()) return fail(summary.status());
  int invalid = 0;
  for (const auto& r : summary->rows) invalid += r.status == "invalid";
  std::printf("%zu layouts (%d invalid), %d evaluated now, %d skipped (already in results.csv)\n",
              summary->rows.size(), invalid, summary->evaluated, summary->skipped);
  int shown = 0;
  for (const auto& r : summary->rows) {
    if (r.status == "invalid" || shown == 10) break;
    std::printf("%2d. %-44s %-9s predicted %8.0f, measured %8.0f tokens/s %s\n",
                ++shown, r.layout.c_str(), r.status.c_str(), r.predicted_tokens_per_s,
                r.measured_tokens_per_s, r.reason.c_str());
  }
  std::printf("Spearman rank correlation (predicted vs measured tokens/s, %d layouts): %.3f\n",
              summary->measured_pairs, summary->spearman);
  std::printf("Median relative error of the predicted step time: %.1f%%\n",
              100 * summary->median_step_error);
  std::printf("Replayed makespan (each rank on a device of its own, measured in thread CPU "
              "time): Spearman %.3f, median relative error %.1f%%\n",
              summary->makespan_spearman, 100 * summary->median_makespan_error);
  std::printf("CPU core-seconds per step (local backend: all ranks, other processes excluded): "
              "Spearman %.3f, median relative error %.1f%%\n",
              summary->cpu_spearman, 100 * summary->median_cpu_error);
  std::printf("Best layout: %s; outputs in %s\n",
              summary->best_layout.empty() ? "(none)" : summary->best_layout.c_str(),
              options.out_dir.c_str());
  return 0;
}
