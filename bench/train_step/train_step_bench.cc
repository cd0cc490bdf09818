// Training-step benchmark (not a test; results in bench/train_step/README.md):
// the tokens/s of one serial training step, and the step time over the time of
// the same step's GEMMs run alone, both measured in this run.
//
//   bazel run //bench/train_step:train_step_bench -- --threads=1
//   bazel run //bench/train_step:train_step_bench -- --config=bench/train_step/h256_s256.textproto
//
// What one step is: training/trainer.cc's TrainStep on one rank (tp = pp = dp =
// 1): zero the gradients; per micro-batch forward (with the loss), backward for
// the input, backward for the weights; the global gradient norm; the AdamW
// update with clipping. Tokens are synthetic (uniform ids below the vocabulary):
// data loading is not what is measured.
//
// How it is measured:
// 1. --warmup untimed steps; the first one's GEMM calls are recorded (a GEMM
//    observer, core/ops/gemm.h) and the replay's buffers are made after it.
// 2. --steps training steps back to back, as in training, with no observer
//    installed: step time, tokens/s, minor page faults per step.
// 3. --steps replays of that step's GEMMs alone (bench/train_step/gemm_replay.h).
//    The ratio is median step / median replay. (Alternating steps and replays
//    was tried: each replay evicts the step's working set and changes the
//    heap's state, which slowed the step by 5-30 %; back-to-back blocks
//    measure each the way it runs. Repeat the whole run for the spread.)
// 4. --steps more steps with an observer that times every GEMM in place and
//    the phases around them: the per-phase breakdown.
// 5. The attention kernels alone on the step's shapes: the largest non-GEMM
//    work (their score and context products run inside the kernel, not through
//    ops::Gemm, so they count as non-GEMM time here).

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/train_step/gemm_replay.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/io/user_path.h"
#include "core/ops/attention.h"
#include "core/ops/gemm.h"
#include "core/ops/reduction.h"
#include "core/random.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"
#include "topology/layout.pb.h"
#include "topology/layout_validation.h"
#include "training/default_config.h"
#include "training/flops.h"
#include "training/lr_schedule.h"
#include "training/optimizer.h"
#include "training/precision.h"
#include "training/train_config.h"
#include "transformer/gpt_stage.h"
#include "transformer/model_config.h"

ABSL_FLAG(std::string, config, "",
          "TrainConfig textproto: its model, layout.micro_batch_size, layout.num_micro_batches, "
          "data.seq_length, optimizer and seed are used; the embedded default config when empty");
ABSL_FLAG(int, steps, 20, "timed training steps (as many GEMM replays and observed steps)");
ABSL_FLAG(int, warmup, 3, "untimed training steps first");
ABSL_FLAG(int, threads, 0, "CPU threads of the execution context (0: all cores)");
ABSL_FLAG(bool, steps_only, false,
          "time the training steps, then the step's GEMMs replayed alone (no per-phase steps), "
          "and print one line 'steps_only: tokens_per_s=<median> step_ms=<median> "
          "min_step_ms=<min> gemm_ms=<median> gemm_gflop=<per step>': what bench/cpu_vs_torch "
          "reads (the GEMMs alone are the floor of any step that calls these GEMMs)");

namespace trident::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

enum Phase : int {
  kZeroGrad,
  kForward,
  kBackwardInput,
  kBackwardWeights,
  kGradNorm,
  kOptimizer,
  kNumPhases
};
constexpr std::array<const char*, kNumPhases> kPhaseNames = {"zero grad",      "forward + loss",
                                                             "backward input", "backward weights",
                                                             "gradient norm",  "AdamW step"};

struct Stats {
  double median = 0, mean = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> values) {
  Stats s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  s.median = n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(n);
  s.min = values.front();
  s.max = values.back();
  return s;
}

double Ms(double seconds) { return 1e3 * seconds; }

// Minor page faults of this process so far: fresh pages the kernel had to map
// (and zero), e.g. when freed memory went back to the OS and is allocated again.
int64_t MinorPageFaults() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

struct StepTimes {
  std::array<double, kNumPhases> phase{};  // seconds
  double total = 0;                        // seconds, the whole step
  double loss = 0;                         // mean token loss
};

// One rank's model, optimizer and synthetic batch; Step() is the trainer's step.
class TrainStepRunner {
 public:
  static absl::StatusOr<std::unique_ptr<TrainStepRunner>> Create(
      const training::TrainConfig& config, const ExecContext& ctx) {
    const auto& model = config.model();
    const auto& layout = config.layout();
    const int64_t padded_vocab = topology::PaddedVocabSize(model.vocab_size(), 1);
    ASSIGN_OR_RETURN(
        std::unique_ptr<transformer::GptStage> stage,
        transformer::GptStage::Create(model, transformer::StageSpec::Whole(model, padded_vocab),
                                      tp::TpGroup(), Device::Cpu()));
    stage->Initialize(ctx, static_cast<uint64_t>(config.seed()));
    ASSIGN_OR_RETURN(std::unique_ptr<training::AdamW> optimizer,
                     training::AdamW::Create(ctx, stage->parameters(),
                                             training::AdamWSettingsFrom(config.optimizer())));
    if (config.precision() != training::FP32) {
      // As StepRunner: fp32 masters in the optimizer, 16-bit values in the
      // model; the stage's activations follow its parameters' dtype.
      RETURN_IF_ERROR(
          optimizer->KeepFp32Masters(ctx, training::ModelDType(config.precision())));
    }

    const int64_t rows =
        static_cast<int64_t>(layout.micro_batch_size()) * layout.num_micro_batches();
    const int64_t seq = config.data().seq_length();
    std::mt19937_64 rng(static_cast<uint64_t>(config.seed()));
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(model.vocab_size() - 1));
    std::vector<int32_t> inputs(rows * seq), targets(rows * seq);
    for (int32_t& t : inputs) t = id(rng);
    for (int32_t& t : targets) t = id(rng);
    return std::unique_ptr<TrainStepRunner>(new TrainStepRunner(
        config, ctx, std::move(stage), std::move(optimizer),
        Tensor::FromVector(inputs, {rows, seq}), Tensor::FromVector(targets, {rows, seq})));
  }

  int64_t tokens_per_step() const { return inputs_.numel(); }

  // The step of training/trainer.cc (TrainStep) on one rank. `recorder`, when
  // given, is told the phase before each one.
  absl::StatusOr<StepTimes> Step(GemmRecorder* recorder) {
    StepTimes times;
    const auto set_phase = [&](Phase phase) {
      if (recorder != nullptr) recorder->set_phase(phase);
    };
    const Clock::time_point step_start = Clock::now();
    Clock::time_point t = step_start;
    const auto lap = [&](Phase phase) {
      const Clock::time_point now = Clock::now();
      times.phase[phase] += std::chrono::duration<double>(now - t).count();
      t = now;
    };

    set_phase(kZeroGrad);
    optimizer_->ZeroGrad(ctx_);
    lap(kZeroGrad);

    const int64_t mbs = config_.layout().micro_batch_size();
    const float loss_scale = static_cast<float>(1.0 / static_cast<double>(tokens_per_step()));
    std::vector<Tensor> losses;  // Per micro-batch, summed once after the loop.
    for (int mb = 0; mb < config_.layout().num_micro_batches(); ++mb) {
      set_phase(kForward);
      RETURN_IF_ERROR(
          stage_
              ->Forward(ctx_, mb, inputs_.Slice(0, mb * mbs, mbs), targets_.Slice(0, mb * mbs, mbs))
              .status());
      losses.push_back(stage_->Losses(mb));
      lap(kForward);
      set_phase(kBackwardInput);
      RETURN_IF_ERROR(stage_->BackwardInput(ctx_, mb, Tensor(), loss_scale).status());
      lap(kBackwardInput);
      set_phase(kBackwardWeights);
      RETURN_IF_ERROR(stage_->BackwardWeights(ctx_, mb));
      lap(kBackwardWeights);
    }
    set_phase(kForward);
    const double loss_sum = ops::MultiTensorSum(ctx_, losses);
    lap(kForward);

    set_phase(kGradNorm);
    ASSIGN_OR_RETURN(const double norm, optimizer_->GradientNorm(ctx_));
    lap(kGradNorm);
    if (!std::isfinite(norm)) {
      return absl::InternalError(absl::StrCat("step ", step_ + 1, ": gradient norm ", norm));
    }
    set_phase(kOptimizer);
    optimizer_->Step(ctx_, training::LearningRate(step_, config_.optimizer(), config_.steps()),
                     training::ClipScale(norm, config_.optimizer().grad_clip()));
    lap(kOptimizer);

    times.total = SecondsSince(step_start);
    times.loss = loss_sum / static_cast<double>(tokens_per_step());
    ++step_;
    return times;
  }

 private:
  TrainStepRunner(const training::TrainConfig& config, const ExecContext& ctx,
                  std::unique_ptr<transformer::GptStage> stage,
                  std::unique_ptr<training::AdamW> optimizer, Tensor inputs, Tensor targets)
      : config_(config),
        ctx_(ctx),
        stage_(std::move(stage)),
        optimizer_(std::move(optimizer)),
        inputs_(std::move(inputs)),
        targets_(std::move(targets)) {}

  const training::TrainConfig config_;
  const ExecContext ctx_;
  std::unique_ptr<transformer::GptStage> stage_;
  std::unique_ptr<training::AdamW> optimizer_;
  Tensor inputs_, targets_;  // [micro-batches x micro_batch_size, seq] int32
  int64_t step_ = 0;
};

// One training step with its GEMM calls recorded (its loss kept), and the
// replay of those calls on buffers of their own, each buffer touched once.
struct RecordedStep {
  double loss = 0;
  std::unique_ptr<GemmReplay> replay;
};

absl::StatusOr<RecordedStep> RecordStepGemms(TrainStepRunner& runner, const ExecContext& ctx,
                                             DType model_dtype, GemmRecorder& recorder) {
  RecordedStep recorded;
  {
    recorder.set_recording(true);
    ops::ScopedGemmObserver scope(&recorder);
    ASSIGN_OR_RETURN(const StepTimes t, runner.Step(&recorder));
    recorded.loss = t.loss;
    recorder.set_recording(false);
  }
  recorded.replay = std::make_unique<GemmReplay>(ctx, recorder.calls(), model_dtype);
  recorded.replay->RunOnce(ctx);
  return recorded;
}

struct AttentionTimes {
  Stats forward, backward;  // seconds per step (all layers, all micro-batches)
};

// The attention kernels of one step, alone: num_layers x micro-batches calls of
// the forward and of the backward on [micro_batch_size, seq] shapes.
AttentionTimes TimeAttentionKernels(const training::TrainConfig& config, const ExecContext& ctx,
                                    int reps) {
  const auto& model = config.model();
  const int64_t b = config.layout().micro_batch_size(), t = config.data().seq_length();
  const int64_t h = model.hidden_size(), heads = model.num_heads();
  const int calls = model.num_layers() * config.layout().num_micro_batches();
  const Tensor qkv = Tensor::Empty({b, t, 3 * h}, DType::kFloat32);
  const Tensor out = Tensor::Empty({b, t, h}, DType::kFloat32);
  const Tensor dout = Tensor::Empty({b, t, h}, DType::kFloat32);
  const Tensor lse = Tensor::Empty({b, heads, t}, DType::kFloat32);
  const Tensor dqkv = Tensor::Empty({b, t, 3 * h}, DType::kFloat32);
  FillNormal(ctx, qkv, 1, "qkv", 1.0f);
  FillNormal(ctx, dout, 2, "dout", 1.0f);
  std::vector<double> forward, backward;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up
    Clock::time_point start = Clock::now();
    for (int i = 0; i < calls; ++i)
      ops::AttentionForward(ctx, qkv, static_cast<int>(heads), out, lse);
    const double f = SecondsSince(start);
    start = Clock::now();
    for (int i = 0; i < calls; ++i) {
      ops::AttentionBackward(ctx, qkv, out, lse, dout, static_cast<int>(heads), dqkv);
    }
    const double bw = SecondsSince(start);
    if (r >= 0) {
      forward.push_back(f);
      backward.push_back(bw);
    }
  }
  return {Summarize(forward), Summarize(backward)};
}

absl::StatusOr<training::TrainConfig> LoadConfig() {
  const std::string path = absl::GetFlag(FLAGS_config);
  training::TrainConfig config;
  if (path.empty()) {
    ASSIGN_OR_RETURN(config, training::ParseTrainConfig(training::DefaultTrainConfigText(),
                                                        "<embedded default config>"));
    // The default job runs on a 3D grid; this benchmark times its serial
    // equivalent: the same model and global batch as one micro-batch.
    topology::ParallelLayout& layout = *config.mutable_layout();
    const int global_batch =
        layout.micro_batch_size() * layout.num_micro_batches() * layout.data_parallel();
    layout.Clear();
    layout.set_micro_batch_size(global_batch);
  } else {
    ASSIGN_OR_RETURN(config, training::LoadTrainConfig(io::ResolveUserPath(path)));
  }
  RETURN_IF_ERROR(training::ValidateTrainConfig(config));
  const auto& layout = config.layout();
  if (layout.tensor_parallel() != 1 || layout.pipeline_parallel() != 1 ||
      layout.data_parallel() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layout.tensor_parallel=", layout.tensor_parallel(), ", layout.pipeline_parallel=",
        layout.pipeline_parallel(), ", layout.data_parallel=", layout.data_parallel(),
        ": this benchmark runs the serial layout (all three must be 1)"));
  }
  if (config.precision() == training::FP16) {
    return absl::InvalidArgumentError(
        "precision=FP16: this benchmark does not run the loss scaler that an fp16 step needs; "
        "use FP32 or BF16");
  }
  return config;
}

absl::Status Run() {
  const int steps = absl::GetFlag(FLAGS_steps), warmup = absl::GetFlag(FLAGS_warmup);
  const int threads_flag = absl::GetFlag(FLAGS_threads);
  if (steps < 1)
    return absl::InvalidArgumentError(absl::StrCat("--steps=", steps, " must be >= 1"));
  if (warmup < 1) {
    // The first warm-up step is the one whose GEMMs are recorded.
    return absl::InvalidArgumentError(absl::StrCat("--warmup=", warmup, " must be >= 1"));
  }
  if (threads_flag < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", threads_flag, " must be >= 0 (0: all cores)"));
  }
  ASSIGN_OR_RETURN(const training::TrainConfig config, LoadConfig());
  const int threads = threads_flag == 0 ? CpuThreadsPerRank(1) : threads_flag;
  const ExecContext ctx = ExecContext::Cpu(threads);
  ASSIGN_OR_RETURN(std::unique_ptr<TrainStepRunner> runner, TrainStepRunner::Create(config, ctx));

  const auto& model = config.model();
  const int64_t tokens = runner->tokens_per_step();
  std::printf(
      "model: %d layers, hidden %d, %d heads, ffn %ld, vocab %d, %.2f M parameters; "
      "%d micro-batch(es) of %d x %d tokens = %ld tokens/step; precision %s; %d thread(s); %d "
      "warm-up + %d timed steps\n",
      model.num_layers(), model.hidden_size(), model.num_heads(),
      static_cast<long>(transformer::FfnHiddenSize(model)), model.vocab_size(),
      training::GptParameterCount(model) / 1e6, config.layout().num_micro_batches(),
      config.layout().micro_batch_size(), config.data().seq_length(), static_cast<long>(tokens),
      std::string(training::PrecisionName(config.precision())).c_str(), threads, warmup, steps);

  const DType model_dtype = training::ModelDType(config.precision());
  GemmRecorder recorder(kNumPhases);
  if (absl::GetFlag(FLAGS_steps_only)) {
    // Steps first, on a heap without the replay's buffers, as in training.
    for (int i = 0; i < warmup; ++i) RETURN_IF_ERROR(runner->Step(nullptr).status());
    std::vector<double> step_s;
    for (int i = 0; i < steps; ++i) {
      ASSIGN_OR_RETURN(const StepTimes t, runner->Step(nullptr));
      step_s.push_back(t.total);
    }
    ASSIGN_OR_RETURN(const RecordedStep recorded, RecordStepGemms(*runner, ctx, model_dtype,
                                                                  recorder));
    std::vector<double> replay_s;
    for (int i = 0; i < steps; ++i) {
      const Clock::time_point start = Clock::now();
      recorded.replay->RunOnce(ctx);
      replay_s.push_back(SecondsSince(start));
    }
    const Stats step = Summarize(step_s), gemm = Summarize(replay_s);
    std::printf(
        "steps_only: tokens_per_s=%.1f step_ms=%.3f min_step_ms=%.3f gemm_ms=%.3f "
        "gemm_gflop=%.3f\n",
        static_cast<double>(tokens) / step.median, Ms(step.median), Ms(step.min), Ms(gemm.median),
        recorded.replay->total_flops() / 1e9);
    return absl::OkStatus();
  }

  // The first warm-up step records the GEMM calls; the replay's buffers are
  // made before the other warm-up steps, so these see the final heap.
  ASSIGN_OR_RETURN(const RecordedStep recorded, RecordStepGemms(*runner, ctx, model_dtype,
                                                                recorder));
  const double first_loss = recorded.loss;
  GemmReplay& replay = *recorded.replay;
  for (int i = 1; i < warmup; ++i) RETURN_IF_ERROR(runner->Step(nullptr).status());

  // Steps back to back, as in training, then the GEMM replays back to back.
  std::vector<double> step_s, replay_s;
  double last_loss = 0;
  const int64_t faults_before = MinorPageFaults();
  for (int i = 0; i < steps; ++i) {
    ASSIGN_OR_RETURN(const StepTimes t, runner->Step(nullptr));
    step_s.push_back(t.total);
    last_loss = t.loss;
  }
  const double faults_per_step =
      static_cast<double>(MinorPageFaults() - faults_before) / static_cast<double>(steps);
  for (int i = 0; i < steps; ++i) {
    const Clock::time_point start = Clock::now();
    replay.RunOnce(ctx);
    replay_s.push_back(SecondsSince(start));
  }

  // Observed steps: phases and the GEMM time inside each.
  std::array<std::vector<double>, kNumPhases> phase_s, phase_gemm_s;
  std::vector<double> observed_step_s, observed_gemm_s;
  std::array<int64_t, kNumPhases> phase_gemm_count{};
  const int64_t observed_faults_before = MinorPageFaults();
  {
    ops::ScopedGemmObserver scope(&recorder);
    for (int i = 0; i < steps; ++i) {
      recorder.ResetTimes();
      ASSIGN_OR_RETURN(const StepTimes t, runner->Step(&recorder));
      observed_step_s.push_back(t.total);
      observed_gemm_s.push_back(recorder.total_seconds());
      for (int p = 0; p < kNumPhases; ++p) {
        phase_s[p].push_back(t.phase[p]);
        phase_gemm_s[p].push_back(recorder.seconds(p));
        phase_gemm_count[p] = recorder.count(p);
      }
      if (recorder.total_count() != static_cast<int64_t>(replay.calls().size())) {
        return absl::InternalError(absl::StrCat("an observed step made ", recorder.total_count(),
                                                " GEMM calls, the recorded step ",
                                                replay.calls().size()));
      }
    }
  }
  const double observed_faults_per_step =
      static_cast<double>(MinorPageFaults() - observed_faults_before) / static_cast<double>(steps);
  const AttentionTimes attention = TimeAttentionKernels(config, ctx, steps);

  const Stats step = Summarize(step_s), gemm = Summarize(replay_s);
  const Stats observed_step = Summarize(observed_step_s);
  const Stats observed_gemm = Summarize(observed_gemm_s);
  const double gemm_flops = replay.total_flops();
  int64_t beta_nonzero = 0;
  for (const ops::GemmCall& c : replay.calls()) beta_nonzero += c.beta != 0.0f ? 1 : 0;

  std::printf("loss (synthetic uniform tokens, ln %d = %.3f): first step %.4f, last timed %.4f\n",
              model.vocab_size(), std::log(static_cast<double>(model.vocab_size())), first_loss,
              last_loss);
  std::printf("GEMM replay dtypes: %s\n",
              model_dtype == DType::kFloat32
                  ? "fp32"
                  : absl::StrCat(DTypeName(model_dtype), " a and b, ", DTypeName(model_dtype),
                                 " c except fp32 weight gradients; through the 16-bit conversion "
                                 "path (widen, fp32 GEMM, round), as the step")
                        .c_str());
  std::printf(
      "GEMMs per step: %zu (%ld accumulate, beta != 0), %.3f GFLOP; replay buffers %.1f MiB%s\n",
      replay.calls().size(), static_cast<long>(beta_nonzero), gemm_flops / 1e9,
      replay.buffer_bytes() / 1048576.0,
      replay.approximated_layouts() > 0 ? absl::StrCat(", ", replay.approximated_layouts(),
                                                       " batched operand layouts approximated")
                                              .c_str()
                                        : "");
  std::printf(
      "step: median %.2f ms, mean %.2f, min %.2f, max %.2f; %.0f minor page faults per "
      "step\nGEMMs alone: median %.2f ms, mean %.2f, min %.2f, max %.2f\n\n",
      Ms(step.median), Ms(step.mean), Ms(step.min), Ms(step.max), faults_per_step, Ms(gemm.median),
      Ms(gemm.mean), Ms(gemm.min), Ms(gemm.max));

  std::printf(
      "| precision | threads | tokens/step | step median (ms) | step mean (ms) | tokens/s | GEMMs alone "
      "median (ms) | step / GEMM | step / GEMM, minima | GEMMs/step | GEMM GFLOP/s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %s | %d | %ld | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %zu | %.1f |\n\n",
              std::string(training::PrecisionName(config.precision())).c_str(), threads,
              static_cast<long>(tokens), Ms(step.median), Ms(step.mean),
              static_cast<double>(tokens) / step.median, Ms(gemm.median), step.median / gemm.median,
              step.min / gemm.min, replay.calls().size(), gemm_flops / gemm.median / 1e9);

  std::printf(
      "Observed steps (GEMMs timed in place; medians over %d steps): step %.2f ms, GEMMs "
      "inside it %.2f ms (%.1f GFLOP/s), step / in-step GEMM %.2f; %.0f minor page faults per "
      "step\n\n",
      steps, Ms(observed_step.median), Ms(observed_gemm.median),
      gemm_flops / observed_gemm.median / 1e9, observed_step.median / observed_gemm.median,
      observed_faults_per_step);
  std::printf("| phase | time (ms) | GEMM (ms) | GEMMs | non-GEMM (ms) |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (int p = 0; p < kNumPhases; ++p) {
    const double total = Summarize(phase_s[p]).median, in_gemm = Summarize(phase_gemm_s[p]).median;
    std::printf("| %s | %.2f | %.2f | %ld | %.2f |\n", kPhaseNames[p], Ms(total), Ms(in_gemm),
                static_cast<long>(phase_gemm_count[p]), Ms(total - in_gemm));
  }
  std::printf("| whole step | %.2f | %.2f | %zu | %.2f |\n\n", Ms(observed_step.median),
              Ms(observed_gemm.median), replay.calls().size(),
              Ms(observed_step.median - observed_gemm.median));
  std::printf(
      "Attention kernels alone (%d layer(s) x %d micro-batch(es); their score/context "
      "products are inside them, not counted as GEMMs above): forward %.2f ms, backward "
      "%.2f ms per step (medians); the other non-GEMM work: %.2f ms\n",
      model.num_layers(), config.layout().num_micro_batches(), Ms(attention.forward.median),
      Ms(attention.backward.median),
      Ms(observed_step.median - observed_gemm.median - attention.forward.median -
         attention.backward.median));
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Times a serial GPT training step and the same step's GEMMs alone; prints tokens/s, the "
      "step / GEMM ratio and a per-phase breakdown as Markdown.");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::bench::Run();
  if (!status.ok()) {
    std::cerr << "train_step_bench: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
