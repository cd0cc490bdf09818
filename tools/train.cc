// The main training job: `bazel run //tools:train` trains the embedded default
// (a small GPT on the Brown corpus, CPU, local backend) and prints one progress
// line per step. Every field of the config can come from --config, and the
// layout flags (tools/config_flags.h) override single layout fields.
//
//   bazel run //tools:train -- --steps=50 --tp=2 --metrics_out=/tmp/tp2.jsonl
//
// Flags that name features this build does not have yet are refused with an
// error, never ignored.

#include <algorithm>
#include <iostream>
#include <thread>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/exec_context.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "tools/config_flags.h"
#include "training/flops.h"
#include "training/trainer.h"

ABSL_FLAG(int, steps, 0, "training steps (0: the config's)");
ABSL_FLAG(std::string, metrics_out, "out/train/metrics.jsonl",
          "JSONL file for per-step metrics (empty: none)");
ABSL_FLAG(std::string, backend, "local", "local (threads in this process) or mpi");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda");
ABSL_FLAG(std::string, save, "out/train/checkpoint",
          "checkpoint directory written at the end (empty: none)");
ABSL_FLAG(std::string, export_safetensors, "",
          "also write the trained model as Hugging Face GPT-2 safetensors to this file");
ABSL_FLAG(std::string, resume, "", "checkpoint directory to resume from");
ABSL_FLAG(int64_t, stop_at_step, 0,
          "stop after this step (0: run all steps); the schedule still spans --steps");
ABSL_FLAG(std::optional<int>, eval_interval, std::nullopt, "validate every N steps (0: never)");
ABSL_FLAG(std::optional<int>, eval_batches, std::nullopt,
          "global batches of validation windows per evaluation, >= 1 (unset: the config's)");
ABSL_FLAG(double, peak_tflops, 0,
          "the peak TFLOP/s of the machine, MFU's denominator (0: measure this machine's "
          "best fp32 GEMM rate on all its cores once at start-up)");

namespace trident {
namespace {

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

  options.backend = absl::GetFlag(FLAGS_backend);
  options.device = absl::GetFlag(FLAGS_device);
  const auto user_path = [](const std::string& p) { return p.empty() ? p : io::ResolveUserPath(p); };
  options.metrics_out = user_path(absl::GetFlag(FLAGS_metrics_out));
  options.save_dir = user_path(absl::GetFlag(FLAGS_save));
  options.resume_dir = user_path(absl::GetFlag(FLAGS_resume));
  options.export_path = user_path(absl::GetFlag(FLAGS_export_safetensors));
  options.stop_at_step = absl::GetFlag(FLAGS_stop_at_step);
  if (options.stop_at_step < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--stop_at_step=", options.stop_at_step, " must be >= 0 (0: run all steps)"));
  }

  const double peak_tflops = absl::GetFlag(FLAGS_peak_tflops);
  if (!(peak_tflops >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peak_tflops=", peak_tflops, " must be >= 0 (0: measure)"));
  }
  if (peak_tflops > 0) {
    options.peak_flops = peak_tflops * 1e12;
    options.peak_source = "--peak_tflops";
  } else {
    // Large GEMMs, best of 0.3 s, on every core the job shares: a short or
    // small measurement underestimates the peak (and overstates MFU).
    const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    training::PeakFlopsOptions peak;
    peak.size = 1024;
    peak.min_time = absl::Milliseconds(300);
    options.peak_flops = training::MeasureCpuPeakFlops(ExecContext::Cpu(cores), peak);
    options.peak_source = absl::StrCat("best fp32 GEMM of this machine on ", cores, " cores");
  }
  return options;
}

int Main() {
  absl::StatusOr<training::TrainOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "train: " << options.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<training::TrainResult> result = training::Train(*options);
  if (!result.ok()) {
    std::cerr << "train: " << result.status().ToString() << "\n";
    return 1;
  }
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
