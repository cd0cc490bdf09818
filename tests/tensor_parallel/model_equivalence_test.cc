// The whole model, trained as training/trainer.cc trains it, is the same model
// for every tensor-parallel degree (DESIGN.md rule 2): for tp in {2, 4}, the
// loss of each of 20 steps, the gathered gradients after step 1 and the
// gathered parameters after step 20 equal the serial (tp = 1) run's, with and
// without sequence parallelism.
//
// One step, as RankTrainer::TrainStep does it: ZeroGrad; per micro-batch
// Forward + BackwardInput + BackwardWeights with loss_scale = 1 / tokens of the
// batch; the global gradient norm (replicated parameters counted on tp rank 0
// only, the squared norm all-reduced over tp); AdamW with clipping and weight
// decay; with sequence parallelism the LayerNorm gradients are summed over tp
// (GptStage::ReduceSequenceParallelGradients) before the norm. fp32 on the
// CPU with the `local` backend.
//
// Tolerance: per tensor, ||got - serial|| / ||serial|| < 1e-5 (a tensor whose
// serial norm is 0 must be exactly 0); per step, |loss - serial| / serial <
// 1e-5. The only differences are in the order of floating-point sums
// (all-reduce of partial GEMMs), so this is tight; NaN always fails.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/check.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tensor_parallel/gather.h"
#include "tensor_parallel/tp_group.h"
#include "tests/common/serial_comparison.h"
#include "training/optimizer.h"
#include "transformer/gpt_stage.h"

namespace trident::tp {
namespace {

using transformer::GptConfig;
using transformer::GptStage;
using transformer::StageSpec;

constexpr int kSteps = 20;
constexpr int kMicroBatches = 2;
constexpr int kMicroBatchSize = 2;
constexpr int kSeq = 16;
constexpr double kTolerance = 1e-5;

GptConfig ModelConfig() {
  GptConfig config;
  config.set_vocab_size(61);  // Not a multiple of 2 or 4: the padding is exercised.
  config.set_context_length(16);
  config.set_num_layers(2);
  config.set_num_heads(4);
  config.set_hidden_size(32);
  return config;
}

struct Layout {
  int tp = 1;
  bool sequence_parallel = false;
  std::string Name() const { return absl::StrCat("tp=", tp, sequence_parallel ? " sp" : ""); }
};

// Tokens and targets [B, T] of micro-batch `mb` of step `step`: a fixed
// pseudo-random function of (step, mb, position), the same for every layout.
void MakeMicroBatch(int step, int mb, int64_t vocab, Tensor* tokens, Tensor* targets) {
  std::vector<int32_t> in(kMicroBatchSize * kSeq), out(kMicroBatchSize * kSeq);
  for (int i = 0; i < kMicroBatchSize * kSeq; ++i) {
    uint64_t z = (static_cast<uint64_t>(step) * 1000003u + mb * 7919u + i) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    in[i] = static_cast<int32_t>(z % vocab);
    out[i] = static_cast<int32_t>((in[i] * 5 + 3) % vocab);
  }
  *tokens = Tensor::FromVector(in, {kMicroBatchSize, kSeq});
  *targets = Tensor::FromVector(out, {kMicroBatchSize, kSeq});
}

using testing::ExpectSameTensors;
using testing::kKeyBiasSuffix;
using testing::MaxAbs;
using testing::SplitOffKeyBias;
using testing::TensorsByName;

struct RunResult {
  std::vector<double> losses;     // Mean token loss of each step.
  TensorsByName grads_after_step1;  // Before step 1's update.
  TensorsByName params_after_last;  // After the last update.
};

// The full tensors of `values` (gradients or parameters, picked by `grads`),
// gathered over the group; wte trimmed to the real vocabulary.
absl::StatusOr<TensorsByName> Gather(const ExecContext& ctx, const ParameterList& params,
                                     const TpGroup& tp, int64_t vocab, bool grads) {
  TensorsByName out;
  for (const Parameter* p : params) {
    ASSIGN_OR_RETURN(Tensor full,
                     GatherShards(ctx, grads ? p->grad : p->value, p->layout, tp));
    if (p->name == "wte.weight") full = full.Slice(0, 0, vocab);
    out[p->name] = full.ToVector<float>();
  }
  return out;
}

absl::StatusOr<RunResult> TrainModel(const Layout& layout) {
  const GptConfig config = ModelConfig();
  const int64_t vocab = config.vocab_size();
  const int64_t padded_vocab = (vocab + layout.tp - 1) / layout.tp * layout.tp;
  const double global_tokens = double{kMicroBatches} * kMicroBatchSize * kSeq;
  const float loss_scale = static_cast<float>(1.0 / global_tokens);
  training::AdamWSettings settings;
  settings.weight_decay = 0.1;
  // AdamW's step m / (sqrt(v) + epsilon) is about lr whatever the gradient's
  // size, so an element whose gradient hovers at zero takes full steps whose
  // sign the last bits decide. With epsilon = 1e-8 one element of the 4096 of
  // h.1.mlp.c_fc.weight did so (1.3e-5 relative after 20 steps, the rest
  // <= 5e-6); epsilon = 1e-6, still far below the typical |gradient| (~1e-3),
  // damps such steps without changing how the model trains.
  settings.epsilon = 1e-6;
  const double learning_rate = 1e-3;
  // Small enough that clipping is active in the first steps (the initial
  // gradient norm of this model is about 1).
  const double grad_clip = 0.5;
  const ExecContext ctx = ExecContext::Cpu();

  RunResult result;
  absl::Status status = comm::RunLocalRanks(layout.tp, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = layout.tp == 1 ? TpGroup() : TpGroup(&world);
    StageSpec spec = StageSpec::Whole(config, padded_vocab);
    spec.sequence_parallel = layout.sequence_parallel;
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, spec, tp, Device::Cpu()));
    stage->Initialize(ctx, /*seed=*/20261122);
    const ParameterList params = stage->parameters();
    ASSIGN_OR_RETURN(std::unique_ptr<training::AdamW> optimizer,
                     training::AdamW::Create(ctx, params, settings));
    optimizer->SetNormFilter(training::CountReplicatedOnlyOnTensorRank0(tp.rank()));

    for (int step = 0; step < kSteps; ++step) {
      optimizer->ZeroGrad(ctx);
      double loss_sum = 0;
      for (int mb = 0; mb < kMicroBatches; ++mb) {
        Tensor tokens, targets;
        MakeMicroBatch(step, mb, vocab, &tokens, &targets);
        RETURN_IF_ERROR(stage->Forward(ctx, mb, tokens, targets).status());
        loss_sum += stage->LossSum(mb);
        RETURN_IF_ERROR(stage->BackwardInput(ctx, mb, Tensor(), loss_scale).status());
        RETURN_IF_ERROR(stage->BackwardWeights(ctx, mb));
      }
      // As the trainer: the LayerNorm gradients of sequence parallelism are
      // summed over tp once per step (a no-op otherwise).
      RETURN_IF_ERROR(stage->ReduceSequenceParallelGradients());
      if (step == 0) {
        ASSIGN_OR_RETURN(TensorsByName grads, Gather(ctx, params, tp, vocab, /*grads=*/true));
        if (rank == 0) result.grads_after_step1 = std::move(grads);
      }
      ASSIGN_OR_RETURN(const double norm,
                       optimizer->GradientNorm(ctx, [&](double& sum_of_squares) {
                         if (tp.size() == 1) return absl::OkStatus();
                         float partial = static_cast<float>(sum_of_squares);
                         RETURN_IF_ERROR(world.AllReduce(comm::Buffer{&partial, 1, DType::kFloat32},
                                                         comm::ReduceOp::kSum));
                         sum_of_squares = partial;
                         return absl::OkStatus();
                       }));
      optimizer->Step(ctx, learning_rate, training::ClipScale(norm, grad_clip));
      if (rank == 0) result.losses.push_back(loss_sum / global_tokens);
    }
    ASSIGN_OR_RETURN(TensorsByName values, Gather(ctx, params, tp, vocab, /*grads=*/false));
    if (rank == 0) result.params_after_last = std::move(values);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return result;
}

class ModelEquivalenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<RunResult> serial = TrainModel(Layout{});
    TRIDENT_CHECK_OK(serial.status());
    serial_ = new RunResult(*std::move(serial));
  }
  static void TearDownTestSuite() {
    delete serial_;
    serial_ = nullptr;
  }

  static void ExpectEqualsSerial(const Layout& layout) {
    SCOPED_TRACE(layout.Name());
    absl::StatusOr<RunResult> run = TrainModel(layout);
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->losses.size(), serial_->losses.size());
    double worst_loss = 0, worst_grad = 0, worst_param = 0;
    for (size_t s = 0; s < serial_->losses.size(); ++s) {
      const double difference = std::abs(run->losses[s] - serial_->losses[s]) / serial_->losses[s];
      if (!(difference <= worst_loss)) worst_loss = difference;
      EXPECT_LT(difference, kTolerance)
          << "step " << s + 1 << ": " << run->losses[s] << " vs serial " << serial_->losses[s];
    }
    const int64_t hidden = ModelConfig().hidden_size();
    ExpectSameTensors(run->grads_after_step1, serial_->grads_after_step1, "gradients after step 1",
                      hidden, /*key_bias_out=*/false, kTolerance, &worst_grad);
    ExpectSameTensors(run->params_after_last, serial_->params_after_last,
                      "parameters after step 20", hidden, /*key_bias_out=*/true, kTolerance,
                      &worst_param);
    // For the record (the README quotes these).
    std::printf("%s: worst relative difference: loss %.3g, gradients %.3g, parameters %.3g\n",
                layout.Name().c_str(), worst_loss, worst_grad, worst_param);
  }

  static RunResult* serial_;
};

RunResult* ModelEquivalenceTest::serial_ = nullptr;

// The serial run itself is a meaningful baseline: it learns (the loss falls
// from about log(61)) and every tensor is finite.
TEST_F(ModelEquivalenceTest, SerialRunTrains) {
  ASSERT_EQ(serial_->losses.size(), static_cast<size_t>(kSteps));
  EXPECT_NEAR(serial_->losses.front(), std::log(61.0), 0.1);
  EXPECT_LT(serial_->losses.back(), serial_->losses.front() - 0.05);
  // Every parameter got a gradient and moved.
  EXPECT_EQ(serial_->grads_after_step1.size(), 2 + 12 * 2 + 2u);
  for (const auto& [name, grad] : serial_->grads_after_step1) {
    double sum = 0;
    for (float g : grad) sum += std::abs(g);
    EXPECT_TRUE(std::isfinite(sum) && sum > 0) << name;
  }
}

// Why the key bias is compared apart: its gradient is rounding noise, many
// orders of magnitude below the query and value biases' gradients.
TEST_F(ModelEquivalenceTest, KeyBiasGradientIsRoundingNoise) {
  const int64_t hidden = ModelConfig().hidden_size();
  const TensorsByName grads = SplitOffKeyBias(serial_->grads_after_step1, hidden);
  for (const char* layer : {"h.0", "h.1"}) {
    const std::string name = absl::StrCat(layer, ".attn.c_attn.bias");
    const double key = MaxAbs(grads.at(name + kKeyBiasSuffix));
    const double query_value = MaxAbs(grads.at(name));
    EXPECT_GT(query_value, 1e-4) << name;
    EXPECT_LT(key, 1e-6 * query_value) << name;
  }
}

TEST_F(ModelEquivalenceTest, TensorParallelEqualsSerial) {
  for (int tp : {2, 4}) ExpectEqualsSerial(Layout{tp, false});
}

TEST_F(ModelEquivalenceTest, SequenceParallelEqualsSerial) {
  for (int tp : {2, 4}) ExpectEqualsSerial(Layout{tp, true});
}

}  // namespace
}  // namespace trident::tp
