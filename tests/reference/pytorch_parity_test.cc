// The serial model against an independent PyTorch GPT-2 (gpt2_reference.py,
// run with Debian's python3-torch in float64): the same weights (through our
// safetensors export) and tokens must give the same logits, loss and every
// parameter gradient, and ten AdamW steps (with clipping and weight decay) the
// same losses and parameters. Tolerance: relative 1e-5 (fp32 against exact).

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/exec_context.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/reduction.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "training/checkpoint/safetensors.h"
#include "training/export.h"
#include "training/optimizer.h"
#include "transformer/gpt_stage.h"

namespace trident {
namespace {

constexpr int kSteps = 10;
constexpr int kBatch = 3;
constexpr int kSeq = 16;

transformer::GptConfig ParityConfig() {
  transformer::GptConfig config;
  config.set_vocab_size(71);  // Odd, to exercise the padded vocabulary.
  config.set_context_length(24);
  config.set_num_layers(2);
  config.set_num_heads(4);
  config.set_hidden_size(32);
  config.set_ffn_hidden_size(96);
  config.set_init_std(0.08f);  // Larger than GPT-2's 0.02 so the test sees real learning.
  return config;
}

// Relative difference of two vectors: ||a - b|| / ||b||.
double RelativeDifference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

std::vector<float> Floats(const checkpoint::TensorSet& set, const std::string& name) {
  const checkpoint::LoadedTensor* t = set.Find(name);
  TRIDENT_CHECK(t != nullptr) << "reference output has no tensor " << name;
  TRIDENT_CHECK(t->dtype == DType::kFloat32) << name;
  std::vector<float> values(t->bytes.size() / sizeof(float));
  std::memcpy(values.data(), t->bytes.data(), t->bytes.size());
  return values;
}

TEST(PytorchParityTest, LogitsLossGradientsAndTenAdamWSteps) {
  const std::string dir = ::testing::TempDir();
  const ExecContext ctx = ExecContext::Cpu();
  const transformer::GptConfig config = ParityConfig();
  auto stage_or = transformer::GptStage::Create(
      config, transformer::StageSpec::Whole(config, /*padded_vocab=*/128), tp::TpGroup(),
      Device::Cpu());
  ASSERT_TRUE(stage_or.ok()) << stage_or.status();
  transformer::GptStage& stage = **stage_or;
  stage.Initialize(ctx, /*seed=*/20261122);
  const ParameterList params = stage.parameters();

  // Weights out through the export the users get.
  auto exported = training::GatherSerialTensors(ctx, params, tp::TpGroup(), config.vocab_size());
  ASSERT_TRUE(exported.ok()) << exported.status();
  const std::string weights_path = dir + "/weights.safetensors";
  ASSERT_TRUE(training::WriteGpt2Safetensors(weights_path, *exported, config).ok());

  // Ten batches of tokens; a few targets are ignored.
  std::vector<int32_t> inputs(kSteps * kBatch * kSeq), targets(inputs.size());
  uint32_t state = 12345;
  for (size_t i = 0; i < inputs.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    inputs[i] = static_cast<int32_t>((state >> 8) % config.vocab_size());
    targets[i] = (i % 37 == 5) ? transformer::kIgnoreIndex
                               : static_cast<int32_t>((inputs[i] * 3 + 1) % config.vocab_size());
  }
  const Tensor all_inputs = Tensor::FromVector(inputs, {kSteps, kBatch, kSeq});
  const Tensor all_targets = Tensor::FromVector(targets, {kSteps, kBatch, kSeq});
  const std::string batches_path = dir + "/batches.safetensors";
  ASSERT_TRUE(checkpoint::WriteSafetensors(batches_path,
                                           {training::BlobOf("inputs", all_inputs),
                                            training::BlobOf("targets", all_targets)})
                  .ok());

  // A learning rate per step (warm-up then decay), clipping that bites.
  std::vector<double> lrs;
  for (int s = 0; s < kSteps; ++s) lrs.push_back(s < 3 ? 3e-3 * (s + 1) / 3 : 3e-3 / (s - 1));
  training::AdamWSettings settings;
  settings.beta1 = 0.9;
  settings.beta2 = 0.95;
  settings.epsilon = 1e-8;
  settings.weight_decay = 0.1;
  const double grad_clip = 0.5;

  const std::string result_path = dir + "/reference.safetensors";
  const std::string log_path = dir + "/reference.log";
  const std::string command = absl::StrCat(
      "/usr/bin/python3 tests/reference/gpt2_reference.py --weights ", weights_path,
      " --batches ", batches_path, " --out ", result_path, " --steps ", kSteps, " --lr ",
      absl::StrJoin(lrs, ","), " --beta1 0.9 --beta2 0.95 --adam_eps 1e-8 --weight_decay 0.1",
      " --grad_clip ", grad_clip, " --ignore_index ", transformer::kIgnoreIndex, " > ",
      log_path, " 2>&1");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    std::ifstream log(log_path);
    std::stringstream text;
    text << log.rdbuf();
    FAIL() << "the PyTorch reference failed (is Debian's python3-torch installed? ./bazelw "
              "installs it):\n"
           << command << "\n" << text.str();
  }
  auto reference = checkpoint::ReadSafetensors(result_path);
  ASSERT_TRUE(reference.ok()) << reference.status();
  const checkpoint::TensorSet& ref = reference->tensors;
  const checkpoint::LoadedTensor* ref_loss = ref.Find("loss");
  ASSERT_NE(ref_loss, nullptr);
  ASSERT_EQ(ref_loss->bytes.size(), sizeof(float) * kSteps);
  const std::vector<float> ref_losses = Floats(ref, "loss");

  auto optimizer_or = training::AdamW::Create(ctx, params, settings);
  ASSERT_TRUE(optimizer_or.ok()) << optimizer_or.status();
  training::AdamW& optimizer = **optimizer_or;
  for (int s = 0; s < kSteps; ++s) {
    SCOPED_TRACE(absl::StrCat("step ", s));
    optimizer.ZeroGrad(ctx);
    const Tensor step_inputs = all_inputs.Select(0, s);
    const Tensor step_targets = all_targets.Select(0, s);
    ASSERT_TRUE(stage.Forward(ctx, 0, step_inputs, step_targets).ok());
    const int64_t tokens = ops::CountTargets(ctx, step_targets, transformer::kIgnoreIndex);
    const double loss = ops::Sum(ctx, stage.Losses(0)) / tokens;
    EXPECT_NEAR(loss, ref_losses[s], 1e-5 * ref_losses[s]);
    EXPECT_TRUE(std::isfinite(loss));
    if (s == 0) {
      // Logits of the real vocabulary: the first 71 of each row's 128 columns.
      const Tensor logits = stage.Logits(0).Slice(1, 0, config.vocab_size());
      EXPECT_LT(RelativeDifference(logits.ToVector<float>(), Floats(ref, "logits")), 1e-5);
    }
    ASSERT_TRUE(stage.BackwardInput(ctx, 0, Tensor(), 1.0f / tokens).ok());
    ASSERT_TRUE(stage.BackwardWeights(ctx, 0).ok());
    if (s == 0) {
      auto grads = training::GatherSerialTensors(ctx, params, tp::TpGroup(),
                                                 config.vocab_size(), /*gradients=*/true);
      ASSERT_TRUE(grads.ok());
      for (const training::NamedTensor& g : *grads) {
        if (g.name.ends_with("attn.c_attn.bias")) {
          const std::vector<float> bias_grad = g.tensor.ToVector<float>();
          const int64_t hidden = config.hidden_size();
          for (int64_t i = hidden; i < 2 * hidden; ++i) {
            EXPECT_LT(std::abs(bias_grad[i]), 1e-7) << g.name << " key bias [" << i - hidden << "]";
          }
        }
        EXPECT_LT(RelativeDifference(g.tensor.ToVector<float>(), Floats(ref, "grad/" + g.name)),
                  1e-5)
            << "gradient of " << g.name;
      }
    }
    auto norm = optimizer.GradientNorm(ctx);
    ASSERT_TRUE(norm.ok());
    optimizer.Step(ctx, lrs[s], training::ClipScale(*norm, grad_clip));
  }
  EXPECT_LT(ref_losses[kSteps - 1], ref_losses[0]);  // It learned something.

  auto final_params = training::GatherSerialTensors(ctx, params, tp::TpGroup(), config.vocab_size());
  ASSERT_TRUE(final_params.ok());
  for (const training::NamedTensor& p : *final_params) {
    std::vector<float> ours = p.tensor.ToVector<float>();
    std::vector<float> theirs = Floats(ref, "param/" + p.name);
    if (p.name.ends_with("attn.c_attn.bias")) {
      // The key bias adds q.b to every score of a row, which the softmax
      // cancels: its true gradient is exactly 0 (checked at step 0 above), and
      // each side's rounding noise (~1e-10) is what Adam normalises into
      // updates. Those elements are not comparable; Q and V biases are.
      const int64_t hidden = config.hidden_size();
      ours.erase(ours.begin() + hidden, ours.begin() + 2 * hidden);
      theirs.erase(theirs.begin() + hidden, theirs.begin() + 2 * hidden);
    }
    EXPECT_LT(RelativeDifference(ours, theirs), 1e-5)
        << "parameter " << p.name << " after " << kSteps << " steps";
  }
}

}  // namespace
}  // namespace trident
