// The GPT on a CUDA context against the same GPT on the CPU (DESIGN.md rule 2:
// correctness by comparison). Both start from the same parameter values (the
// CPU model's, copied to the GPU) and train on the same tokens: the loss and
// every gradient of the first step are compared, then the parameters after 3
// AdamW steps (clipping and warm-up as the layout-equivalence harness).
//
// Tolerances, per tensor ||gpu - cpu|| / ||cpu|| (NaN never passes):
// - fp32: 1e-4 for the loss, gradients and parameters. Not the harness's 1e-5:
//   there the layouts differ only in how a few sums are split, while here every
//   op sums in a different order (cuBLASLt's tiled K loop, warp-shuffle
//   reductions in LayerNorm, softmax and the loss, the flash attention's
//   blockwise softmax), across dozens of ops in series.
// - bf16 (fp32 masters, moments and gradients; 16-bit values and
//   activations): the harness's 16-bit tolerances for layouts whose devices
//   round at different points (tests/common/layout_equivalence.h, tp > 1):
//   loss 5e-4, gradients 3e-2, parameters 1.2e-1 — the GPU rounds fused
//   epilogue results once where the CPU rounds each op's output, so one-ulp
//   flips (2^-8) appear throughout.
//
// Host syncs: a step on the GPU waits for the device only where it needs a
// number on the host, and today that is twice a step, whatever the number of
// micro-batches and parameters:
// - the gradient norm, one ops::MultiTensorSumOfSquares over every gradient:
//   clipping needs it on the host before AdamW scales the update by it;
// - the loss, one ops::MultiTensorSum over the micro-batches' token losses,
//   which wait on the device until the step's end (the count of targets
//   that count is taken on the host, where the targets come from).
// The test holds the step to exactly that count.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/gpu_test_util.h"
#include "core/cuda/host_sync.h"
#include "core/device.h"
#include "core/exec_context.h"
#include "core/ops/reduction.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tensor_parallel/tp_group.h"
#include "tests/common/serial_comparison.h"
#include "topology/layout_validation.h"
#include "training/lr_schedule.h"
#include "training/optimizer.h"
#include "training/train_config.pb.h"
#include "transformer/gpt_stage.h"
#include "transformer/model.pb.h"

namespace trident::testing {
namespace {

struct ModelCase {
  std::string name;
  int layers, hidden, heads, seq, vocab;
  int micro_batch_size, micro_batches;
  DType dtype;
};

struct Tolerance {
  double loss, gradients, parameters;
};

Tolerance ToleranceFor(DType dtype) {
  return dtype == DType::kFloat32 ? Tolerance{1e-4, 1e-4, 1e-4} : Tolerance{5e-4, 3e-2, 1.2e-1};
}

transformer::GptConfig ModelConfig(const ModelCase& c) {
  transformer::GptConfig model;
  model.set_vocab_size(c.vocab);
  model.set_context_length(c.seq);
  model.set_num_layers(c.layers);
  model.set_num_heads(c.heads);
  model.set_hidden_size(c.hidden);
  return model;
}

// The harness's optimizer (tests/common/layout_equivalence.cc EquivalenceConfig).
training::OptimizerConfig OptimizerSettings() {
  training::OptimizerConfig optimizer;
  optimizer.set_learning_rate(1e-3);
  optimizer.set_min_learning_rate(1e-4);
  optimizer.set_warmup_steps(2);
  optimizer.set_weight_decay(0.1);
  optimizer.set_grad_clip(0.5);
  optimizer.set_epsilon(1e-6);
  return optimizer;
}

constexpr int kSteps = 3;

// One device's model, optimizer and tokens; the step of training/trainer.cc
// on one rank, split where the test compares.
class DeviceRun {
 public:
  DeviceRun(const ModelCase& c, const ExecContext& ctx) : case_(c), ctx_(ctx) {}

  absl::Status Create(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets,
                      const DeviceRun* values_from) {
    const transformer::GptConfig model = ModelConfig(case_);
    const int64_t padded_vocab = topology::PaddedVocabSize(model.vocab_size(), 1);
    absl::StatusOr<std::unique_ptr<transformer::GptStage>> stage = transformer::GptStage::Create(
        model, transformer::StageSpec::Whole(model, padded_vocab), tp::TpGroup(), ctx_.device());
    if (!stage.ok()) return stage.status();
    stage_ = *std::move(stage);
    if (values_from == nullptr) {
      stage_->Initialize(ctx_, /*seed=*/1234);
    } else {
      // The reference model's fp32 values (its masters under mixed precision),
      // before this side rounds to 16 bits.
      const ParameterList mine = stage_->parameters();
      const std::vector<Tensor> theirs = values_from->optimizer_->Fp32Values();
      if (mine.size() != theirs.size()) return absl::InternalError("parameter lists differ");
      for (size_t i = 0; i < mine.size(); ++i) mine[i]->value.CopyFrom(theirs[i].ToFloatVector());
    }
    absl::StatusOr<std::unique_ptr<training::AdamW>> optimizer = training::AdamW::Create(
        ctx_, stage_->parameters(), training::AdamWSettingsFrom(OptimizerSettings()));
    if (!optimizer.ok()) return optimizer.status();
    optimizer_ = *std::move(optimizer);
    if (case_.dtype != DType::kFloat32) {
      if (absl::Status s = optimizer_->KeepFp32Masters(ctx_, case_.dtype); !s.ok()) return s;
    }
    const int64_t rows = int64_t{case_.micro_batch_size} * case_.micro_batches;
    inputs_ = Tensor::Empty({rows, case_.seq}, DType::kInt32, ctx_.allocator());
    targets_ = Tensor::Empty({rows, case_.seq}, DType::kInt32, ctx_.allocator());
    inputs_.CopyFrom(inputs);
    targets_.CopyFrom(targets);
    return absl::OkStatus();
  }

  // Zeroes the gradients, then forward and backward of every micro-batch;
  // returns the mean token loss.
  absl::StatusOr<double> ForwardBackward() {
    optimizer_->ZeroGrad(ctx_);
    const int64_t mbs = case_.micro_batch_size;
    const float loss_scale = static_cast<float>(1.0 / static_cast<double>(inputs_.numel()));
    std::vector<Tensor> losses;  // Read back once, after the last micro-batch.
    for (int mb = 0; mb < case_.micro_batches; ++mb) {
      absl::StatusOr<Tensor> out = stage_->Forward(ctx_, mb, inputs_.Slice(0, mb * mbs, mbs),
                                                   targets_.Slice(0, mb * mbs, mbs));
      if (!out.ok()) return out.status();
      losses.push_back(stage_->Losses(mb));
      absl::StatusOr<Tensor> dx = stage_->BackwardInput(ctx_, mb, Tensor(), loss_scale);
      if (!dx.ok()) return dx.status();
      if (absl::Status s = stage_->BackwardWeights(ctx_, mb); !s.ok()) return s;
    }
    return ops::MultiTensorSum(ctx_, losses) / static_cast<double>(inputs_.numel());
  }

  // The gradient norm, then the clipped AdamW update.
  absl::Status Update() {
    const training::OptimizerConfig settings = OptimizerSettings();
    absl::StatusOr<double> norm = optimizer_->GradientNorm(ctx_);
    if (!norm.ok()) return norm.status();
    if (!std::isfinite(*norm)) return absl::InternalError(absl::StrCat("gradient norm ", *norm));
    optimizer_->Step(ctx_, training::LearningRate(step_, settings, kSteps),
                     training::ClipScale(*norm, settings.grad_clip()));
    ++step_;
    return absl::OkStatus();
  }

  TensorsByName Gradients() const {
    TensorsByName out;
    for (const Parameter* p : stage_->parameters()) out[p->name] = p->grad.ToFloatVector();
    return out;
  }

  // The fp32 values AdamW updates (masters under mixed precision).
  TensorsByName Fp32Parameters() const {
    TensorsByName out;
    const ParameterList params = stage_->parameters();
    const std::vector<Tensor> values = optimizer_->Fp32Values();
    for (size_t i = 0; i < params.size(); ++i) out[params[i]->name] = values[i].ToFloatVector();
    return out;
  }

  size_t num_parameters() { return stage_->parameters().size(); }

 private:
  const ModelCase case_;
  const ExecContext ctx_;
  std::unique_ptr<transformer::GptStage> stage_;
  std::unique_ptr<training::AdamW> optimizer_;
  Tensor inputs_, targets_;
  int64_t step_ = 0;
};

// Trains `c` on `reference` and on `under_test` from the reference model's
// values and the same tokens, and compares: the loss and every gradient of
// step 1, the fp32 parameters after kSteps. With `cuda` (the context behind
// `under_test`), step 2's host syncs are counted too.
void ExpectSameTraining(const ModelCase& c, const ExecContext& reference,
                        const ExecContext& under_test, const Tolerance& tolerance,
                        cuda::CudaContext* cuda) {
  // Random tokens; every seventh target ignored, so CountTargets matters.
  const int64_t n = int64_t{c.micro_batch_size} * c.micro_batches * c.seq;
  std::mt19937 rng(99);
  std::uniform_int_distribution<int32_t> id(0, c.vocab - 1);
  std::vector<int32_t> inputs(n), targets(n);
  for (int32_t& t : inputs) t = id(rng);
  for (int64_t i = 0; i < n; ++i) targets[i] = i % 7 == 3 ? transformer::kIgnoreIndex : id(rng);

  DeviceRun want(c, reference), got(c, under_test);
  ASSERT_TRUE(want.Create(inputs, targets, nullptr).ok());
  ASSERT_TRUE(got.Create(inputs, targets, &want).ok());

  // Step 1: the loss and every gradient.
  absl::StatusOr<double> want_loss = want.ForwardBackward();
  absl::StatusOr<double> got_loss = got.ForwardBackward();
  ASSERT_TRUE(want_loss.ok()) << want_loss.status();
  ASSERT_TRUE(got_loss.ok()) << got_loss.status();
  const double loss_difference = std::abs(*got_loss - *want_loss) / std::abs(*want_loss);
  EXPECT_TRUE(loss_difference < tolerance.loss)  // False for NaN.
      << "loss: " << *got_loss << " on " << under_test.device() << ", " << *want_loss << " on "
      << reference.device();
  const TensorsByName want_gradients = want.Gradients();
  ASSERT_EQ(want_gradients.size(), want.num_parameters());  // Names are unique.
  int nonzero = 0;
  for (const auto& [name, values] : want_gradients) nonzero += MaxAbs(values) > 0;
  EXPECT_GT(nonzero, 0) << "a step without gradients compares nothing";
  double worst_gradient = 0;
  ExpectSameTensors(got.Gradients(), want_gradients, "gradient after step 1", c.hidden,
                    /*key_bias_out=*/false, tolerance.gradients, &worst_gradient);
  ASSERT_TRUE(want.Update().ok());
  ASSERT_TRUE(got.Update().ok());

  // Steps 2 to kSteps, the second one's host syncs counted.
  for (int step = 2; step <= kSteps; ++step) {
    ASSERT_TRUE(want.ForwardBackward().ok());
    ASSERT_TRUE(want.Update().ok());
    if (cuda != nullptr) ASSERT_TRUE(cuda->Synchronize().ok());
    const int64_t syncs_before = cuda::HostSyncCount();
    ASSERT_TRUE(got.ForwardBackward().ok());
    ASSERT_TRUE(got.Update().ok());
    const int64_t syncs = cuda::HostSyncCount() - syncs_before;
    if (cuda != nullptr && step == 2) {
      EXPECT_EQ(syncs, 2) << "host syncs of one step (" << c.micro_batches << " micro-batches, "
                          << got.num_parameters()
                          << " parameters): one for the loss, one for the gradient norm";
    }
  }
  double worst_parameter = 0;
  ExpectSameTensors(got.Fp32Parameters(), want.Fp32Parameters(),
                    absl::StrCat("parameters after ", kSteps, " steps"), c.hidden,
                    /*key_bias_out=*/true, tolerance.parameters, &worst_parameter);
  // Printed so that a GPU run records how much room the tolerances leave.
  std::printf("%s on %s: loss %.3g, worst gradient %.3g, worst parameter %.3g (relative)\n",
              c.name.c_str(), under_test.device().ToString().c_str(), loss_difference,
              worst_gradient, worst_parameter);
}

const ModelCase kHarnessFp32{"harness_fp32", 8, 32, 4, 16, 61, 2, 2, DType::kFloat32};
const ModelCase kHarnessBf16{"harness_bf16", 8, 32, 4, 16, 61, 2, 2, DType::kBFloat16};

// The comparison itself, here without a GPU: two CPU runs of the harness's
// model are the same computation, so they must agree exactly (a difference
// would be the test's own doing, e.g. tokens or values not shared).
TEST(GptStageComparisonTest, TwoCpuRunsAgreeExactly) {
  const ExecContext cpu = ExecContext::Cpu(AvailableCores());
  for (const ModelCase& c : {kHarnessFp32, kHarnessBf16}) {
    SCOPED_TRACE(c.name);
    ExpectSameTraining(c, cpu, cpu, Tolerance{1e-12, 1e-12, 1e-12}, nullptr);
  }
}

class GptStageGpuTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(GptStageGpuTest, TrainsAsTheCpuModelDoes) {
  TRIDENT_SKIP_WITHOUT_GPU(unused_allocator);
  const ModelCase c = GetParam();
  absl::StatusOr<cuda::CudaContext> context = cuda::MakeCudaContext(0, "gpt_stage_gpu_test");
  ASSERT_TRUE(context.ok()) << context.status();
  // Model code makes parameters on the device's default allocator.
  SetDefaultAllocator(Device::Cuda(0), context->allocator());
  ExpectSameTraining(c, ExecContext::Cpu(AvailableCores()), context->exec(), ToleranceFor(c.dtype),
                     &*context);
}

INSTANTIATE_TEST_SUITE_P(
    Models, GptStageGpuTest,
    ::testing::Values(
        // The layout-equivalence harness's model (EquivalenceConfig).
        kHarnessFp32, kHarnessBf16,
        // GPT-2 small's width, heads and a 128-token context, two layers; a
        // vocabulary of 8192 keeps the CPU reference fast.
        ModelCase{"gpt2_like_fp32", 2, 768, 12, 128, 8192, 1, 2, DType::kFloat32},
        ModelCase{"gpt2_like_bf16", 2, 768, 12, 128, 8192, 1, 2, DType::kBFloat16}),
    [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

}  // namespace
}  // namespace trident::testing
