// Activation recomputation (block.h): the stash each policy leaves after the
// forward equals BlockStashBytes, and the gradients are bitwise those of the
// run that keeps every activation (serial and tp 2 with sequence parallelism;
// the pipelines are in tests/equivalence/recompute_bitwise_test.cc).

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "transformer/block.h"
#include "transformer/gpt_stage.h"
#include "transformer/model_config.h"

namespace trident::transformer {
namespace {

constexpr Recompute kPolicies[] = {Recompute::kNone, Recompute::kSelective, Recompute::kFull};
const char* PolicyName(Recompute p) {
  return p == Recompute::kNone ? "none" : p == Recompute::kSelective ? "selective" : "full";
}

// The memory-measurement model: 4 layers, hidden 128, 4 heads, MLP 512.
GptConfig MemoryConfig() {
  GptConfig config;
  config.set_vocab_size(64);
  config.set_context_length(512);
  config.set_num_layers(4);
  config.set_num_heads(4);
  config.set_hidden_size(128);
  config.set_ffn_hidden_size(512);
  return config;
}

Tensor RandomRows(int64_t rows, int64_t cols, int salt) {
  std::vector<float> v(rows * cols);
  uint32_t s = 12345u + salt;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / static_cast<float>(1 << 24) - 0.5f;
  }
  return Tensor::FromVector(v, {rows, cols});
}

TEST(RecomputeTest, BlockStashEqualsTheFormula) {
  const GptConfig config = MemoryConfig();
  const ExecContext ctx = ExecContext::Cpu();
  const int64_t batch = 2;
  // T = 2048: the memory-efficient attention's case (README "Attention memory").
  for (int64_t seq : {128, 512, 2048}) {
    for (int tp_size : {1, 2}) {
      for (bool sp : {false, true}) {
        if (sp && tp_size == 1) continue;
        absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
          const tp::TpGroup tp = tp_size == 1 ? tp::TpGroup() : tp::TpGroup(&world, sp);
          TransformerBlock block(config, 0, tp, Device::Cpu());
          block.Initialize(ctx, 7);
          const int64_t local_rows = tp.LocalRows(batch * seq);
          const Tensor x = RandomRows(local_rows, config.hidden_size(), rank);
          for (Recompute policy : kPolicies) {
            block.set_recompute(policy);
            BlockActivations acts;
            RETURN_IF_ERROR(block.Forward(ctx, x, batch, seq, &acts));
            const int64_t want =
                BlockStashBytes(policy, batch, seq, config.hidden_size(), FfnHiddenSize(config),
                                config.num_heads(), tp_size, sp);
            EXPECT_EQ(acts.HeldBytes(), want) << "T=" << seq << " tp=" << tp_size << " sp=" << sp
                                              << " " << PolicyName(policy);
            if (rank == 0) {
              std::printf("block stash T=%lld tp=%d sp=%d %-9s: %lld bytes\n",
                          static_cast<long long>(seq), tp_size, sp ? 1 : 0, PolicyName(policy),
                          static_cast<long long>(acts.HeldBytes()));
            }
          }
          return absl::OkStatus();
        });
        EXPECT_TRUE(status.ok()) << status;
      }
    }
  }
}

// The formula's parts, by hand for one case (T = 128, serial): a formula that
// only restated the code would not catch a tensor kept by mistake.
TEST(RecomputeTest, FormulaByHand) {
  // n = N = 256 tokens, h = 128, f = 512, a = 4.
  // The attention keeps its log-sum-exp, a B T = 4 * 2 * 128 floats.
  const int64_t none =
      4 * (4 * 256 * 128 + 4 * 256 + 4 * 256 * 128 + 2 * 256 * 512 + 4 * 2 * 128);
  EXPECT_EQ(BlockStashBytes(Recompute::kNone, 2, 128, 128, 512, 4, 1, false), none);
  EXPECT_EQ(BlockStashBytes(Recompute::kSelective, 2, 128, 128, 512, 4, 1, false),
            none - 4 * 4 * 2 * 128);
  EXPECT_EQ(BlockStashBytes(Recompute::kFull, 2, 128, 128, 512, 4, 1, false), 4 * 256 * 128);
}

struct Batch {
  Tensor tokens;
  Tensor targets;
};

Batch MakeBatch(int batch, int seq, int vocab) {
  std::vector<int32_t> tokens(batch * seq), targets(batch * seq);
  for (int i = 0; i < batch * seq; ++i) {
    tokens[i] = (i * 7 + 1) % vocab;
    targets[i] = (i * 5 + 2) % vocab;
  }
  return Batch{Tensor::FromVector(tokens, {batch, seq}), Tensor::FromVector(targets, {batch, seq})};
}

std::vector<uint32_t> Bits(const Tensor& t) {
  const std::vector<float> v = t.ToVector<float>();
  std::vector<uint32_t> bits(v.size());
  std::memcpy(bits.data(), v.data(), v.size() * sizeof(float));
  return bits;
}

struct StageRun {
  std::vector<std::vector<uint32_t>> grads;
  int64_t stash_after_forward = 0;
  int64_t stash_after_backward_input = 0;
};

// Two micro-batches, both forwards first (both stashes held at once), then
// each backward, split in B and W.
absl::StatusOr<StageRun> RunStage(const GptConfig& config, const tp::TpGroup& tp, Recompute policy,
                                  int batch, int seq) {
  const ExecContext ctx = ExecContext::Cpu();
  StageSpec spec = StageSpec::Whole(config, 128 * tp.size());
  spec.sequence_parallel = tp.sequence_parallel();
  spec.recompute = policy;
  ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage, GptStage::Create(config, spec, tp, Device::Cpu()));
  stage->Initialize(ctx, 99);
  const Batch b = MakeBatch(batch, seq, config.vocab_size());
  StageRun run;
  for (int mb = 0; mb < 2; ++mb) RETURN_IF_ERROR(stage->Forward(ctx, mb, b.tokens, b.targets).status());
  run.stash_after_forward = stage->StashBytes();
  for (int mb = 0; mb < 2; ++mb) {
    RETURN_IF_ERROR(stage->BackwardInput(ctx, mb, Tensor(), 1.0f / (batch * seq)).status());
    if (mb == 0) run.stash_after_backward_input = stage->StashBytes();
  }
  for (int mb = 0; mb < 2; ++mb) RETURN_IF_ERROR(stage->BackwardWeights(ctx, mb));
  RETURN_IF_ERROR(stage->ReduceSequenceParallelGradients());
  for (Parameter* p : stage->parameters()) run.grads.push_back(Bits(p->grad));
  return run;
}

void ExpectBitwiseAcrossPolicies(int tp_size, bool sp, int batch, int seq, bool print) {
  GptConfig config = MemoryConfig();
  const int blocks = config.num_layers();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const tp::TpGroup tp = tp_size == 1 ? tp::TpGroup() : tp::TpGroup(&world, sp);
    ASSIGN_OR_RETURN(const StageRun none, RunStage(config, tp, Recompute::kNone, batch, seq));
    for (Recompute policy : {Recompute::kSelective, Recompute::kFull}) {
      ASSIGN_OR_RETURN(const StageRun run, RunStage(config, tp, policy, batch, seq));
      EXPECT_EQ(run.grads.size(), none.grads.size());
      for (size_t k = 0; k < run.grads.size(); ++k) {
        EXPECT_EQ(run.grads[k], none.grads[k]) << PolicyName(policy) << " parameter " << k;
      }
      // Two micro-batches of `blocks` blocks: the stash shrinks by exactly
      // the blocks' formula difference.
      const int64_t saved =
          2 * blocks *
          (BlockStashBytes(Recompute::kNone, batch, seq, config.hidden_size(), FfnHiddenSize(config),
                           config.num_heads(), tp_size, sp) -
           BlockStashBytes(policy, batch, seq, config.hidden_size(), FfnHiddenSize(config),
                           config.num_heads(), tp_size, sp));
      EXPECT_EQ(none.stash_after_forward - run.stash_after_forward, saved) << PolicyName(policy);
      if (print && rank == 0) {
        std::printf("stage (4 layers, 2 micro-batches of %dx%d, tp=%d sp=%d) %-9s: after F %lld "
                    "bytes (none %lld), after one B %lld (none %lld)\n",
                    batch, seq, tp_size, sp ? 1 : 0, PolicyName(policy),
                    static_cast<long long>(run.stash_after_forward),
                    static_cast<long long>(none.stash_after_forward),
                    static_cast<long long>(run.stash_after_backward_input),
                    static_cast<long long>(none.stash_after_backward_input));
      }
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(RecomputeTest, SerialGradientsAreBitwiseTheSame) {
  ExpectBitwiseAcrossPolicies(1, false, 2, 128, true);
  ExpectBitwiseAcrossPolicies(1, false, 2, 512, true);
}

TEST(RecomputeTest, TensorParallelSequenceParallelGradientsAreBitwiseTheSame) {
  ExpectBitwiseAcrossPolicies(2, true, 2, 64, false);
  ExpectBitwiseAcrossPolicies(2, false, 2, 64, false);
}

}  // namespace
}  // namespace trident::transformer
