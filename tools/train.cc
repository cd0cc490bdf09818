// The main training job: `bazel run //tools:train` trains the embedded default
// (a small GPT on the Brown corpus, CPU, local backend) and prints one progress
// line per step. Every field of the config can come from --config, and the
// layout flags (tools/config_flags.h) override single layout fields.
//
//   bazel run //tools:train -- --steps=50 --tp=2 --metrics_out=/tmp/tp2.jsonl
//
// Flags that name features this build does not have yet are refused with an
// error, never ignored.

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "tools/config_flags.h"
#include "training/cpu_peak.h"
#include "training/stop_signals.h"
#include "training/trainer.h"

ABSL_FLAG(int, steps, 0, "training steps (0: the config's)");
ABSL_FLAG(std::string, metrics_out, "out/train/{run}/metrics.jsonl",
          "JSONL file for per-step metrics (empty: none); {run} is a fresh directory per run "
          "(a UTC timestamp; out/train/latest links to the newest)");
ABSL_FLAG(std::optional<std::string>, backend, std::nullopt,
          "local (threads in this process) or mpi (one process per rank, under mpirun/srun); "
          "default: mpi when started by a launcher with several processes, else local");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda");
ABSL_FLAG(std::string, save, "out/train/{run}/checkpoint",
          "checkpoint directory written at the end and every checkpoint_interval steps "
          "(empty: none, but a stop signal still saves to the default)");
ABSL_FLAG(std::optional<int>, save_interval, std::nullopt,
          "also save every N steps (the config's checkpoint_interval; 0: only at the end)");
ABSL_FLAG(int, keep_last, 1, "checkpoints kept in --save (older ones are removed)");
ABSL_FLAG(bool, allow_different_data, false,
          "resume even when the checkpoint was trained on other token files");
ABSL_FLAG(bool, overwrite, false,
          "let outputs replace existing files (never a directory that is not a checkpoint)");
ABSL_FLAG(std::string, export_safetensors, "",
          "also write the trained model as Hugging Face GPT-2 safetensors to this file");
ABSL_FLAG(std::string, resume, "", "checkpoint directory to resume from");
ABSL_FLAG(int64_t, stop_at_step, 0,
          "stop after this step (0: run all steps); the schedule still spans --steps");
ABSL_FLAG(std::optional<int>, eval_interval, std::nullopt, "validate every N steps (0: never)");
ABSL_FLAG(std::optional<int>, eval_batches, std::nullopt,
          "global batches of validation windows per evaluation, >= 1 (unset: the config's)");
ABSL_FLAG(double, peak_tflops, 0,
          "the peak TFLOP/s of all the job's cores together, MFU's denominator (0: one core's "
          "best fp32 GEMM rate, measured once per machine and cached, times the job's cores)");
ABSL_FLAG(int, threads, 0,
          "compute threads per rank (0: the cores this process may use, honouring taskset and "
          "launcher binding, divided among the ranks that share them)");
ABSL_FLAG(double, comm_timeout_s, 60,
          "seconds a rank waits for its peers in one operation before the job fails naming the "
          "missing ranks");

namespace trident {
namespace {

constexpr char kDefaultSave[] = "out/train/{run}/checkpoint";

// The launcher's process count: Open MPI, any PMI launcher, Slurm's srun.
int LauncherProcesses() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}) {
    int value = 0;
    if (const char* text = std::getenv(name); text != nullptr && absl::SimpleAtoi(text, &value)) {
      return value;
    }
  }
  return 1;
}

// Under mpirun -np N (N > 1) without --backend, the ranks are those processes:
// the local backend would run N duplicate jobs writing the same files.
absl::StatusOr<std::string> ChooseBackend(const std::optional<std::string>& flag) {
  const int processes = LauncherProcesses();
  if (!flag.has_value()) return processes > 1 ? "mpi" : "local";
  if (*flag == "local" && processes > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--backend=local, but a launcher started ", processes, " processes: each would run the "
        "whole job; use --backend=mpi (or leave --backend out) to make them one job's ranks"));
  }
  return *flag;
}

absl::StatusOr<training::TrainOptions> OptionsFromFlags() {
  training::TrainOptions options;
  ASSIGN_OR_RETURN(options.config, tools::TrainConfigFromFlags());
  training::TrainConfig& config = options.config;
  if (absl::GetFlag(FLAGS_steps) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--steps=", absl::GetFlag(FLAGS_steps),
                                                   " must be positive"));
  }
  if (absl::GetFlag(FLAGS_steps) > 0) config.set_steps(absl::GetFlag(FLAGS_steps));
  if (auto v = absl::GetFlag(FLAGS_eval_interval)) config.set_eval_interval(*v);
  if (auto v = absl::GetFlag(FLAGS_eval_batches)) config.set_eval_batches(*v);

  ASSIGN_OR_RETURN(options.backend, ChooseBackend(absl::GetFlag(FLAGS_backend)));
  options.device = absl::GetFlag(FLAGS_device);
  const auto user_path = [](const std::string& p) { return p.empty() ? p : io::ResolveUserPath(p); };
  options.metrics_out = user_path(absl::GetFlag(FLAGS_metrics_out));
  options.save_dir = user_path(absl::GetFlag(FLAGS_save));
  options.signal_save_dir = user_path(kDefaultSave);
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  options.config_path = tools::ConfigFileFromFlags();
  options.resume_dir = user_path(absl::GetFlag(FLAGS_resume));
  options.export_path = user_path(absl::GetFlag(FLAGS_export_safetensors));
  options.stop_at_step = absl::GetFlag(FLAGS_stop_at_step);
  options.allow_different_data = absl::GetFlag(FLAGS_allow_different_data);
  if (const std::optional<int> interval = absl::GetFlag(FLAGS_save_interval)) {
    if (*interval < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--save_interval=", *interval, " must be >= 0 (0: only at the end)"));
    }
    config.set_checkpoint_interval(*interval);
  }
  options.keep_last = absl::GetFlag(FLAGS_keep_last);
  if (options.keep_last < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--keep_last=", options.keep_last, " must be >= 1"));
  }
  if (options.stop_at_step < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--stop_at_step=", options.stop_at_step, " must be >= 0 (0: run all steps)"));
  }

  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", threads, " must be >= 0 (0: the available cores)"));
  }
  options.threads = threads;
  const double timeout = absl::GetFlag(FLAGS_comm_timeout_s);
  if (!(timeout > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--comm_timeout_s=", timeout, " must be positive"));
  }
  options.comm_timeout = absl::Seconds(timeout);

  const double peak_tflops = absl::GetFlag(FLAGS_peak_tflops);
  if (!(peak_tflops >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peak_tflops=", peak_tflops, " must be >= 0 (0: measure)"));
  }
  if (peak_tflops > 0) {
    options.peak_flops = peak_tflops * 1e12;
    options.peak_source = "--peak_tflops";
  } else if (options.device != "cuda") {  // A GPU's peak comes from its datasheet (trainer.h).
    const training::CpuPeak peak = training::MeasuredCpuPeak(training::DefaultCpuPeakCache());
    options.peak_flops_per_core = peak.flops_per_core;
    options.peak_source = peak.source;
  }
  return options;
}

int Main() {
  absl::StatusOr<training::TrainOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "train: " << options.status().message() << "\n";
    return 2;
  }
  training::StopSignals stop_signals;
  absl::StatusOr<training::TrainResult> result = training::Train(*options);
  if (!result.ok()) {
    std::cerr << "train: " << result.status().ToString() << "\n";
    return 1;
  }
  // Stopped by a signal after saving: the shell's status for that signal.
  if (result->stop_signal != 0) return training::SignalExitCode(result->stop_signal);
  return 0;
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains a GPT on a tp x pp x dp grid. Without flags: the embedded default config.");
  absl::ParseCommandLine(argc, argv);
  return trident::Main();
}
