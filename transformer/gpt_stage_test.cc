#include "transformer/gpt_stage.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduction.h"
#include "core/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tensor_parallel/gather.h"

namespace trident::transformer {
namespace {

using ::testing::HasSubstr;

GptConfig TinyConfig() {
  GptConfig config;
  config.set_vocab_size(11);
  config.set_context_length(8);
  config.set_num_layers(2);
  config.set_num_heads(4);
  config.set_hidden_size(16);
  config.set_ffn_hidden_size(32);
  return config;
}

struct Batch {
  Tensor tokens;
  Tensor targets;
};

Batch MakeBatch(int batch, int seq, int vocab, int salt) {
  std::vector<int32_t> tokens(batch * seq), targets(batch * seq);
  for (int i = 0; i < batch * seq; ++i) {
    tokens[i] = (i * 7 + salt * 3 + 1) % vocab;
    targets[i] = (i * 5 + salt + 2) % vocab;
  }
  return Batch{Tensor::FromVector(tokens, {batch, seq}), Tensor::FromVector(targets, {batch, seq})};
}

std::unique_ptr<GptStage> MakeStage(const GptConfig& config, const tp::TpGroup& tp,
                                    int64_t padded_vocab, const ExecContext& ctx) {
  auto stage = GptStage::Create(config, StageSpec::Whole(config, padded_vocab), tp, Device::Cpu());
  TRIDENT_CHECK_OK(stage.status());
  (*stage)->Initialize(ctx, /*seed=*/1234);
  return std::move(*stage);
}

// Loss (sum over tokens) of a forward-only pass.
double ForwardLossSum(GptStage& stage, const ExecContext& ctx, const Batch& batch) {
  auto out = stage.Forward(ctx, 0, batch.tokens, batch.targets);
  TRIDENT_CHECK_OK(out.status());
  const double loss = ops::Sum(ctx, stage.Losses(0));
  stage.Discard(0);
  return loss;
}

void ForwardBackward(GptStage& stage, const ExecContext& ctx, const Batch& batch, int mb,
                     float loss_scale) {
  TRIDENT_CHECK_OK(stage.Forward(ctx, mb, batch.tokens, batch.targets).status());
  TRIDENT_CHECK_OK(stage.BackwardInput(ctx, mb, Tensor(), loss_scale).status());
  TRIDENT_CHECK_OK(stage.BackwardWeights(ctx, mb));
}

TEST(GptStageTest, InitialLossIsNearUniform) {
  const ExecContext ctx = ExecContext::Cpu();
  const GptConfig config = TinyConfig();
  auto stage = MakeStage(config, tp::TpGroup(), 11, ctx);
  const Batch batch = MakeBatch(2, 8, 11, 0);
  const double mean = ForwardLossSum(*stage, ctx, batch) / 16;
  // Small init: logits are near zero, so the loss is near log(vocab).
  EXPECT_NEAR(mean, std::log(11.0), 0.05);
}

// Every parameter's gradient against central finite differences of the
// summed loss, on a few elements per parameter. fp32 forward passes limit the
// agreement to about 1e-3 absolute; the PyTorch parity test checks 1e-5.
TEST(GptStageTest, GradientsMatchFiniteDifferences) {
  const ExecContext ctx = ExecContext::Cpu();
  const GptConfig config = TinyConfig();
  auto stage = MakeStage(config, tp::TpGroup(), 11, ctx);
  const Batch batch = MakeBatch(2, 6, 11, 1);
  ForwardBackward(*stage, ctx, batch, 0, /*loss_scale=*/1.0f);
  int checked = 0;
  for (Parameter* p : stage->parameters()) {
    std::vector<float> values = p->value.ToVector<float>();
    const std::vector<float> grads = p->grad.ToVector<float>();
    const int64_t n = p->value.numel();
    for (int64_t i : {int64_t{0}, n / 3, n - 1}) {
      const float original = values[i];
      const float eps = 1e-2f;
      values[i] = original + eps;
      p->value.CopyFrom(values);
      const double plus = ForwardLossSum(*stage, ctx, batch);
      values[i] = original - eps;
      p->value.CopyFrom(values);
      const double minus = ForwardLossSum(*stage, ctx, batch);
      values[i] = original;
      p->value.CopyFrom(values);
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_NEAR(grads[i], numeric, 2e-3 + 2e-2 * std::abs(numeric))
          << p->name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * (2 + 12 * 2 + 2));
}

// Two micro-batches accumulated equal one batch holding both (the mean over
// all tokens), whatever order the split backward runs in.
TEST(GptStageTest, MicroBatchesAccumulateToTheWholeBatch) {
  const ExecContext ctx = ExecContext::Cpu();
  const GptConfig config = TinyConfig();
  auto whole = MakeStage(config, tp::TpGroup(), 11, ctx);
  auto split = MakeStage(config, tp::TpGroup(), 11, ctx);
  const Batch both = MakeBatch(4, 8, 11, 2);
  ForwardBackward(*whole, ctx, both, 0, 1.0f / 32);

  const Batch first{both.tokens.Slice(0, 0, 2), both.targets.Slice(0, 0, 2)};
  const Batch second{both.tokens.Slice(0, 2, 2), both.targets.Slice(0, 2, 2)};
  ASSERT_TRUE(split->Forward(ctx, 0, first.tokens, first.targets).ok());
  ASSERT_TRUE(split->Forward(ctx, 1, second.tokens, second.targets).ok());
  ASSERT_TRUE(split->BackwardInput(ctx, 1, Tensor(), 1.0f / 32).ok());
  ASSERT_TRUE(split->BackwardInput(ctx, 0, Tensor(), 1.0f / 32).ok());
  EXPECT_EQ(split->pending_micro_batches(), 2);
  ASSERT_TRUE(split->BackwardWeights(ctx, 0).ok());
  ASSERT_TRUE(split->BackwardWeights(ctx, 1).ok());
  EXPECT_EQ(split->pending_micro_batches(), 0);

  const ParameterList a = whole->parameters(), b = split->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    const std::vector<float> ga = a[k]->grad.ToVector<float>(), gb = b[k]->grad.ToVector<float>();
    for (size_t i = 0; i < ga.size(); ++i) {
      ASSERT_NEAR(ga[i], gb[i], 1e-6 + 1e-5 * std::abs(ga[i])) << a[k]->name << "[" << i << "]";
    }
  }
}

// Tensor parallelism reproduces the serial loss and gradients (gathered).
TEST(GptStageTest, TensorParallelEqualsSerial) {
  const ExecContext ctx = ExecContext::Cpu();
  const GptConfig config = TinyConfig();
  auto serial = MakeStage(config, tp::TpGroup(), 11, ctx);
  const Batch batch = MakeBatch(2, 8, 11, 3);
  ASSERT_TRUE(serial->Forward(ctx, 0, batch.tokens, batch.targets).ok());
  const double serial_loss = ops::Sum(ctx, serial->Losses(0));
  ASSERT_TRUE(serial->BackwardInput(ctx, 0, Tensor(), 1.0f / 16).ok());
  ASSERT_TRUE(serial->BackwardWeights(ctx, 0).ok());
  const ParameterList serial_params = serial->parameters();

  for (int tp_size : {2, 4}) {
    SCOPED_TRACE(absl::StrCat("tp=", tp_size));
    const int64_t padded = 128 * tp_size;  // Megatron's padding: a multiple of 128 * tp.
    absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
      const tp::TpGroup tp(&world);
      auto stage = MakeStage(config, tp, padded, ctx);
      RETURN_IF_ERROR(stage->Forward(ctx, 0, batch.tokens, batch.targets).status());
      EXPECT_NEAR(ops::Sum(ctx, stage->Losses(0)), serial_loss, 1e-5 * std::abs(serial_loss));
      RETURN_IF_ERROR(stage->BackwardInput(ctx, 0, Tensor(), 1.0f / 16).status());
      RETURN_IF_ERROR(stage->BackwardWeights(ctx, 0));
      const ParameterList params = stage->parameters();
      EXPECT_EQ(params.size(), serial_params.size());
      for (size_t k = 0; k < params.size(); ++k) {
        ASSIGN_OR_RETURN(Tensor full, tp::GatherShards(ctx, params[k]->grad, params[k]->layout, tp));
        if (params[k]->name == "wte.weight") full = full.Slice(0, 0, config.vocab_size());
        const std::vector<float> got = full.ToVector<float>();
        const std::vector<float> want = serial_params[k]->grad.Slice(0, 0, full.dim(0))
                                            .ToVector<float>();
        EXPECT_EQ(params[k]->name, serial_params[k]->name);
        for (size_t i = 0; i < want.size(); ++i) {
          if (std::abs(got[i] - want[i]) > 1e-7 + 1e-5 * std::abs(want[i])) {
            ADD_FAILURE() << "rank " << rank << " " << params[k]->name << "[" << i << "] " << got[i]
                          << " vs serial " << want[i];
            break;
          }
        }
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
  }
}

TEST(GptStageTest, BadConfigsAreRefusedWithTheField) {
  GptConfig config = TinyConfig();
  config.set_num_heads(5);
  auto bad_heads = GptStage::Create(config, StageSpec::Whole(config, 11), tp::TpGroup(),
                                    Device::Cpu());
  EXPECT_THAT(bad_heads.status().message(), HasSubstr("num_heads=5 must divide model.hidden_size=16"));

  config = TinyConfig();
  config.set_hidden_size(0);
  auto zero = GptStage::Create(config, StageSpec::Whole(config, 11), tp::TpGroup(), Device::Cpu());
  EXPECT_THAT(zero.status().message(), HasSubstr("model.hidden_size=0 must be >= 1"));

  config = TinyConfig();
  config.set_tied_embeddings(false);
  auto untied = GptStage::Create(config, StageSpec::Whole(config, 11), tp::TpGroup(), Device::Cpu());
  EXPECT_EQ(untied.status().code(), absl::StatusCode::kInvalidArgument);

  config = TinyConfig();
  StageSpec spec = StageSpec::Whole(config, 11);
  spec.num_layers = 3;
  auto too_many = GptStage::Create(config, spec, tp::TpGroup(), Device::Cpu());
  EXPECT_THAT(too_many.status().message(), HasSubstr("not within model.num_layers=2"));
}

TEST(GptStageTest, OutOfOrderCallsAreErrors) {
  const ExecContext ctx = ExecContext::Cpu();
  const GptConfig config = TinyConfig();
  auto stage = MakeStage(config, tp::TpGroup(), 11, ctx);
  const Batch batch = MakeBatch(1, 4, 11, 0);
  EXPECT_EQ(stage->BackwardInput(ctx, 7, Tensor(), 1.0f).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(stage->Forward(ctx, 7, batch.tokens, batch.targets).ok());
  EXPECT_EQ(stage->Forward(ctx, 7, batch.tokens, batch.targets).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stage->BackwardWeights(ctx, 7).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace trident::transformer
