// GPT-2 124M training steps on one GPU through the trainer's own step
// (training::StepRunner, the serial layout): synthetic tokens, warm-up steps,
// then timed steps. Prints tokens/s and MFU per timed step and their medians
// (MFU: 6 N + 12 L d T FLOPs per token, PaLM's convention with N as
// training/flops.h counts it, over the GPU's datasheet peak), and the GPU time
// of each op class per step, from CUDA events around every backend call
// (op_class_timer.h). bench/gpu_gpt2/run_device_checks.sh gpt2 runs it next
// to the PyTorch baseline and prints the ratio of their tokens/s.
//
// Exit status: 0 after the timed steps; 1 when a step fails; 2 without a GPU.

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/gpu_gpt2/op_class_timer.h"
#include "core/comm/communicator.h"
#include "core/ops/dispatch.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "topology/grid_communicators.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"
#include "training/accelerator.h"
#include "training/device_peak.h"
#include "training/flops.h"
#include "training/launch.h"
#include "training/metrics.h"
#include "training/precision.h"
#include "training/step_runner.h"
#include "training/train_config.pb.h"

ABSL_FLAG(int, micro_batch_size, 16, "sequences per step (one micro-batch)");
ABSL_FLAG(int, warmup_steps, 3, "untimed steps first (cuBLASLt and cuDNN plans are made here)");
ABSL_FLAG(int, steps, 10, "timed steps");
ABSL_FLAG(int, num_layers, 12, "transformer layers (GPT-2 124M: 12)");
ABSL_FLAG(std::string, precision, "bf16", "fp32, bf16 or fp16");
ABSL_FLAG(int, seed, 1337, "seed of the initial weights and the synthetic tokens");

namespace trident::bench {
namespace {

constexpr int kSeqLength = 1024;
constexpr int kVocab = 50304;  // GPT-2's 50257 padded to a multiple of 128.

absl::StatusOr<training::TrainConfig> Gpt2Config() {
  training::TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(kVocab);
  model->set_context_length(kSeqLength);
  model->set_num_layers(absl::GetFlag(FLAGS_num_layers));
  model->set_num_heads(12);
  model->set_hidden_size(768);
  auto* layout = config.mutable_layout();
  layout->set_micro_batch_size(absl::GetFlag(FLAGS_micro_batch_size));
  layout->set_num_micro_batches(1);
  config.mutable_data()->set_seq_length(kSeqLength);
  config.set_seed(absl::GetFlag(FLAGS_seed));
  config.set_steps(absl::GetFlag(FLAGS_warmup_steps) + absl::GetFlag(FLAGS_steps));
  ASSIGN_OR_RETURN(const training::Precision precision,
                   training::ParsePrecision(absl::GetFlag(FLAGS_precision)));
  config.set_precision(precision);
  // No data paths (the tokens are synthetic), so not ValidateTrainConfig:
  // the layout's rules here, the model's in StageModel::Create.
  RETURN_IF_ERROR(topology::DeriveMicroBatches(config.mutable_layout()));
  return config;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

absl::Status RunBench(const training::TrainConfig& config, const training::AcceleratorRank& gpu,
                      const std::string& gpu_name, comm::Communicator& world) {
  const int micro_batch = config.layout().micro_batch_size();
  const int warmup = absl::GetFlag(FLAGS_warmup_steps);
  const int timed = absl::GetFlag(FLAGS_steps);
  ASSIGN_OR_RETURN(topology::ProcessGrid grid, topology::ProcessGrid::Create(config.layout(), 1));
  ASSIGN_OR_RETURN(topology::GridCommunicators comms,
                   topology::BuildGridCommunicators(grid, world));
  const ExecContext& ctx = gpu.exec();
  ASSIGN_OR_RETURN(std::unique_ptr<training::StepRunner> runner,
                   training::StepRunner::Create(config, grid, 0, comms, ctx));
  RETURN_IF_ERROR(gpu.WaitForDevice());

  // From here on every op of the GPU goes through the timer.
  static OpClassTimer* timer = new OpClassTimer(ops::BackendFor(ctx));  // Outlives every op.
  ops::RegisterBackend(DeviceType::kCuda, timer);

  const double flops_per_token = training::GptFlopsPerToken(config.model(), kSeqLength);
  const std::optional<training::DevicePeak> peak =
      training::DatasheetPeak(gpu_name, config.precision());
  const double tokens_per_step = static_cast<double>(micro_batch) * kSeqLength;
  std::printf("GPU: %s; %s\n", gpu_name.c_str(),
              peak ? absl::StrCat("MFU over ", peak->flops_per_second / 1e12, " TFLOP/s (",
                                  peak->source, ")")
                         .c_str()
                   : "unknown GPU: no MFU");
  std::printf(
      "model: %lld parameters, L=%d d=768 H=12 T=%d V=%d; %s; batch %d x %d = "
      "%.0f "
      "tokens/step; %.3f GFLOP/token\n",
      static_cast<long long>(training::GptParameterCount(config.model())),
      config.model().num_layers(), kSeqLength, kVocab,
      std::string(training::PrecisionName(config.precision())).c_str(), micro_batch, kSeqLength,
      tokens_per_step, flops_per_token / 1e9);

  std::mt19937 rng(static_cast<uint32_t>(config.seed()));
  std::uniform_int_distribution<int32_t> token(0, 50256);
  std::vector<double> rates, mfus, step_ms;
  for (int step = 0; step < warmup + timed; ++step) {
    // A fresh synthetic batch each step, targets the next token.
    std::vector<int32_t> row_tokens(static_cast<size_t>(micro_batch) * (kSeqLength + 1));
    for (int32_t& t : row_tokens) t = token(rng);
    std::vector<int32_t> in, out;
    for (int r = 0; r < micro_batch; ++r) {
      const int32_t* row = row_tokens.data() + static_cast<size_t>(r) * (kSeqLength + 1);
      in.insert(in.end(), row, row + kSeqLength);
      out.insert(out.end(), row + 1, row + kSeqLength + 1);
    }
    ASSIGN_OR_RETURN(const Tensor inputs,
                     gpu.Upload(Tensor::FromVector(in, {micro_batch, kSeqLength})));
    ASSIGN_OR_RETURN(const Tensor targets,
                     gpu.Upload(Tensor::FromVector(out, {micro_batch, kSeqLength})));
    RETURN_IF_ERROR(gpu.WaitForDevice());
    training::Stopwatch watch;
    ASSIGN_OR_RETURN(const training::StepResult result,
                     runner->TrainStep(step, inputs, targets, tokens_per_step));
    RETURN_IF_ERROR(gpu.WaitForDevice());
    const double seconds = watch.ElapsedSeconds();
    RETURN_IF_ERROR(timer->Collect());
    const bool is_timed = step >= warmup;
    if (step + 1 == warmup) timer->Reset();  // The classes cover the timed steps only.
    const double rate = tokens_per_step / seconds;
    const double mfu = peak ? rate * flops_per_token / peak->flops_per_second : 0;
    if (is_timed) {
      rates.push_back(rate);
      mfus.push_back(mfu);
      step_ms.push_back(seconds * 1e3);
    }
    std::printf("step %3d%s: loss %.4f, %8.1f ms, %10.0f tokens/s%s\n", step,
                is_timed ? "" : " (warm-up)", result.loss, seconds * 1e3, rate,
                peak ? absl::StrFormat(", MFU %5.1f%%", 100 * mfu).c_str() : "");
  }
  if (timed == 0) return absl::OkStatus();
  std::printf("median over %d timed steps: %.0f tokens/s, %s\n", timed, Median(rates),
              peak ? absl::StrFormat("MFU %.1f%% (of %.1f TFLOP/s)", 100 * Median(mfus),
                                     peak->flops_per_second / 1e12)
                         .c_str()
                   : "no MFU (unknown GPU)");
  // The classes are sums over the timed steps: shares of the mean step.
  double mean_ms = 0;
  for (double ms : step_ms) mean_ms += ms / timed;
  std::printf(
      "GPU time per step by op class (CUDA events around each backend call, mean over the "
      "timed steps; mean step %.1f ms):\n",
      mean_ms);
  const std::array<double, kNumOpClasses> ms = timer->milliseconds();
  const std::array<int64_t, kNumOpClasses> calls = timer->calls();
  double classified = 0;
  for (int c = 0; c < kNumOpClasses; ++c) {
    const double per_step = ms[c] / timed;
    classified += per_step;
    std::printf("  %-42s %8.2f ms  %5.1f%%  (%lld calls/step)\n",
                std::string(OpClassName(static_cast<OpClass>(c))).c_str(), per_step,
                100 * per_step / mean_ms, static_cast<long long>(calls[c] / timed));
  }
  std::printf("  %-42s %8.2f ms  %5.1f%%\n", "outside the ops (launch gaps, host syncs)",
              mean_ms - classified, 100 * (mean_ms - classified) / mean_ms);
  return absl::OkStatus();
}

int Main() {
  const training::Accelerator* cuda = training::FindAccelerator("cuda");
  if (cuda == nullptr) {
    std::fprintf(stderr, "gpu_gpt2_bench: built without the CUDA accelerator\n");
    return 2;
  }
  absl::StatusOr<std::vector<training::AcceleratorDevice>> devices = cuda->VisibleDevices();
  if (!devices.ok()) {
    std::fprintf(stderr, "gpu_gpt2_bench: no GPU: %s\n", devices.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<training::TrainConfig> config = Gpt2Config();
  if (!config.ok()) {
    std::fprintf(stderr, "gpu_gpt2_bench: %s\n", config.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<training::AcceleratorRank>> gpu =
      cuda->Open(devices->front().index);
  if (!gpu.ok()) {
    std::fprintf(stderr, "gpu_gpt2_bench: %s\n", gpu.status().ToString().c_str());
    return 1;
  }
  const absl::Status status =
      training::LaunchRanks("local", 1, [&](int, comm::Communicator& world) {
        return RunBench(*config, **gpu, devices->front().name, world);
      });
  if (!status.ok()) {
    std::fprintf(stderr, "gpu_gpt2_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace trident::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return trident::bench::Main();
}
