// Sequence parallelism (Korthikanti et al. 2022): the row-chunk collectives of
// TpGroup, the tp traffic of one forward + backward as the communicator counts
// it, the activation memory a block keeps, and the errors of layouts it cannot
// run. (Equality with the serial model
// over 20 training steps: model_equivalence_test.)
//
// Traffic with B*T tokens, hidden h, L blocks, fp32 (4 bytes), A = B*T*h*4
// bytes. The local communicator counts a reduce-scatter by its input and an
// all-gather by its output, so each collective below counts A:
//   forward:  reduce-scatter 1 (embedding) + 2 per block (attn.c_proj, mlp.c_proj)
//             all-gather     2 per block (before c_attn, c_fc) + 1 (before the head)
//             all-reduce     3 of B*T*4 in the vocab-parallel loss (max, sum-exp,
//                            target logit), as without SP
//   backward: all-gather     4 per block: dy of mlp.c_proj and attn.c_proj, and
//                            the LayerNorm output chunks that c_fc and c_attn
//                            gather again for their weight gradients
//                            (Megatron's re-gather: the stash keeps chunks)
//                            + 2: the final LayerNorm's output, gathered again
//                            for the tied head's wte gradient, and the
//                            embedding's output gradient, for wte and wpe
//             reduce-scatter 2 per block (dx of c_fc, c_attn) + 1 (the head's dx)
//   per step: all-reduce     the partial LayerNorm gradients, 2 (weight, bias) per
//                            LayerNorm, 2L + 1 LayerNorms, of h*4 bytes each
//                            (GptStage::ReduceSequenceParallelGradients).
// This is Megatron-LM's count (Korthikanti et al. 2022, Section 4.2.2 and
// Megatron's LinearWithGradAccumulationAndAsyncCommunication): per block 2
// all-gathers + 2 reduce-scatters forward, and backward 2 reduce-scatters and
// 4 all-gathers, 2 of which re-gather the column-parallel inputs for the
// weight gradients. So SP replaces each all-reduce of A by one reduce-scatter +
// one all-gather of A (the same ring traffic), plus one all-gather of A per
// column-parallel layer in the backward, which buys keeping 1 / tp of each
// LayerNorm output between forward and backward; the LayerNorms and residual
// adds run on B*T/tp rows.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tensor_parallel/tp_group.h"
#include "tests/tensor_parallel/stage_shape.h"
#include "transformer/block.h"
#include "transformer/gpt_stage.h"

namespace trident::tp {
namespace {

using comm::CommOp;
using comm::CommStats;
using test_support::Batch;
using test_support::MakeBatch;
using test_support::TinyConfig;
using ::testing::HasSubstr;
using transformer::BlockActivations;
using transformer::GptConfig;
using transformer::GptStage;
using transformer::StageSpec;
using transformer::TransformerBlock;

// Calls and bytes per collective kind.
struct Traffic {
  int64_t all_reduce_calls = 0, all_reduce_bytes = 0;
  int64_t reduce_scatter_calls = 0, reduce_scatter_bytes = 0;
  int64_t all_gather_calls = 0, all_gather_bytes = 0;
};

// The formulas of the file comment.
Traffic ForwardTraffic(int64_t tokens, int64_t hidden, int64_t layers) {
  const int64_t activation = tokens * hidden * 4;
  return {3, 3 * tokens * 4, 1 + 2 * layers, (1 + 2 * layers) * activation, 2 * layers + 1,
          (2 * layers + 1) * activation};
}
Traffic BackwardTraffic(int64_t tokens, int64_t hidden, int64_t layers) {
  const int64_t activation = tokens * hidden * 4;
  Traffic t;
  t.reduce_scatter_calls = 2 * layers + 1;
  t.reduce_scatter_bytes = t.reduce_scatter_calls * activation;
  t.all_gather_calls = 4 * layers + 2;
  t.all_gather_bytes = t.all_gather_calls * activation;
  return t;
}
Traffic LayerNormReduction(int64_t hidden, int64_t layers) {
  return {2 * (2 * layers + 1), 2 * (2 * layers + 1) * hidden * 4, 0, 0, 0, 0};
}

void ExpectTraffic(const CommStats& stats, const Traffic& want, const std::string& what) {
  EXPECT_EQ(stats.calls_of(CommOp::kAllReduce), want.all_reduce_calls) << what;
  EXPECT_EQ(stats.bytes_of(CommOp::kAllReduce), want.all_reduce_bytes) << what;
  EXPECT_EQ(stats.calls_of(CommOp::kReduceScatter), want.reduce_scatter_calls) << what;
  EXPECT_EQ(stats.bytes_of(CommOp::kReduceScatter), want.reduce_scatter_bytes) << what;
  EXPECT_EQ(stats.calls_of(CommOp::kAllGather), want.all_gather_calls) << what;
  EXPECT_EQ(stats.bytes_of(CommOp::kAllGather), want.all_gather_bytes) << what;
  for (CommOp op : {CommOp::kBroadcast, CommOp::kSend, CommOp::kRecv, CommOp::kBarrier}) {
    EXPECT_EQ(stats.calls_of(op), 0) << what << ": " << comm::CommOpName(op);
  }
}

StageSpec SequenceParallelSpec(const GptConfig& config, int tp_size) {
  StageSpec spec =
      StageSpec::Whole(config, (config.vocab_size() + tp_size - 1) / tp_size * tp_size);
  spec.sequence_parallel = true;
  return spec;
}

void CheckTraffic(int tp_size, int batch, int seq) {
  SCOPED_TRACE(absl::StrCat("tp=", tp_size, " B=", batch, " T=", seq));
  const GptConfig config = TinyConfig();
  const Batch data = MakeBatch(batch, seq, config.vocab_size());
  const int64_t tokens = int64_t{batch} * seq;
  const int64_t h = config.hidden_size(), layers = config.num_layers();
  const ExecContext ctx = ExecContext::Cpu();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, SequenceParallelSpec(config, tp_size),
                                      TpGroup(&world), Device::Cpu()));
    stage->Initialize(ctx, /*seed=*/5);
    world.ResetStats();
    RETURN_IF_ERROR(stage->Forward(ctx, 0, data.tokens, data.targets).status());
    ExpectTraffic(world.stats(), ForwardTraffic(tokens, h, layers),
                  absl::StrCat("rank ", rank, " forward"));
    world.ResetStats();
    RETURN_IF_ERROR(stage->BackwardInput(ctx, 0, Tensor(), 1.0f / tokens).status());
    RETURN_IF_ERROR(stage->BackwardWeights(ctx, 0));
    ExpectTraffic(world.stats(), BackwardTraffic(tokens, h, layers),
                  absl::StrCat("rank ", rank, " backward"));
    world.ResetStats();
    RETURN_IF_ERROR(stage->ReduceSequenceParallelGradients());
    ExpectTraffic(world.stats(), LayerNormReduction(h, layers),
                  absl::StrCat("rank ", rank, " LayerNorm gradients"));
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(SequenceParallelCommVolumeTest, OneStepMatchesTheAnalyticCount) {
  CheckTraffic(2, /*batch=*/2, /*seq=*/8);
  CheckTraffic(4, /*batch=*/2, /*seq=*/8);
  CheckTraffic(2, /*batch=*/3, /*seq=*/6);  // 18 tokens: chunks of 9 rows.
  CheckTraffic(4, /*batch=*/1, /*seq=*/4);  // One row per rank.
}

// The formula written out for the tiny model (h=16, L=3) at B*T=16 tokens.
TEST(SequenceParallelCommVolumeTest, FormulaForTheTinyModel) {
  const int64_t a = 16 * 16 * 4;
  const Traffic f = ForwardTraffic(16, 16, 3);
  EXPECT_EQ(f.reduce_scatter_calls, 7);
  EXPECT_EQ(f.reduce_scatter_bytes, 7 * a);
  EXPECT_EQ(f.all_gather_calls, 7);
  EXPECT_EQ(f.all_gather_bytes, 7 * a);
  EXPECT_EQ(f.all_reduce_bytes, 3 * 16 * 4);
  const Traffic b = BackwardTraffic(16, 16, 3);
  EXPECT_EQ(b.reduce_scatter_calls, 7);
  EXPECT_EQ(b.all_gather_calls, 14);
  EXPECT_EQ(b.all_gather_bytes, 14 * a);
  EXPECT_EQ(b.all_reduce_calls, 0);
  EXPECT_EQ(LayerNormReduction(16, 3).all_reduce_calls, 14);
}

// Without SP the LayerNorm reduction is a no-op: no traffic at all.
TEST(SequenceParallelCommVolumeTest, NoReductionWithoutSequenceParallelism) {
  const GptConfig config = TinyConfig();
  absl::Status status = comm::RunLocalRanks(2, [&](int, comm::Communicator& world) {
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, StageSpec::Whole(config, 12), TpGroup(&world),
                                      Device::Cpu()));
    world.ResetStats();
    RETURN_IF_ERROR(stage->ReduceSequenceParallelGradients());
    ExpectTraffic(world.stats(), Traffic{}, "no SP");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

// AllGatherRows / ReduceScatterRows move contiguous row chunks, rank order.
TEST(TpGroupRowsTest, GatherAndReduceScatterRowChunks) {
  const ExecContext ctx = ExecContext::Cpu();
  for (int size : {1, 2, 4}) {
    SCOPED_TRACE(absl::StrCat("tp=", size));
    absl::Status status = comm::RunLocalRanks(size, [&](int rank, comm::Communicator& world) {
      const TpGroup tp = size == 1 ? TpGroup() : TpGroup(&world);
      // Chunk of 2 rows x 3: rank r holds 100 r + element index.
      std::vector<float> mine(6);
      for (int i = 0; i < 6; ++i) mine[i] = 100.0f * rank + i;
      const Tensor local = Tensor::FromVector(mine, {2, 3});
      Tensor full = Tensor::Zeros({2 * size, 3}, DType::kFloat32, Device::Cpu());
      RETURN_IF_ERROR(tp.AllGatherRows(ctx, local, full));
      const std::vector<float> gathered = full.ToVector<float>();
      for (int r = 0; r < size; ++r) {
        for (int i = 0; i < 6; ++i) EXPECT_EQ(gathered[r * 6 + i], 100.0f * r + i);
      }
      // Reduce-scatter of full * (rank + 1): chunk c sums to (100 c + i) * S,
      // S = 1 + ... + size.
      std::vector<float> scaled = gathered;
      for (float& v : scaled) v *= static_cast<float>(rank + 1);
      Tensor out = Tensor::Zeros({2, 3}, DType::kFloat32, Device::Cpu());
      RETURN_IF_ERROR(tp.ReduceScatterRows(ctx, Tensor::FromVector(scaled, {2 * size, 3}), out));
      const float sum_of_scales = size * (size + 1) / 2.0f;
      const std::vector<float> reduced = out.ToVector<float>();
      for (int i = 0; i < 6; ++i) EXPECT_EQ(reduced[i], (100.0f * rank + i) * sum_of_scales);
      // Shapes that are not size() chunks are errors naming both.
      Tensor wrong = Tensor::Zeros({2 * size + 1, 3}, DType::kFloat32, Device::Cpu());
      EXPECT_THAT(tp.AllGatherRows(ctx, local, wrong).message(),
                  HasSubstr(absl::StrCat(2 * size + 1, " rows")));
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
  }
}

// Activation bytes one block holds after its forward (BlockActivations::
// HeldBytes, fp32), N = B*T tokens, a heads, f = ffn width:
//   kept whole on every rank without SP: input, ln1_out, residual, ln2_out
//     4 N h, and the LayerNorm stats (mean, rstd of LN1 and LN2) 4 N;
//   split over tp by the layers themselves: qkv 3 N h / tp, attn_out N h / tp,
//     fc_pre and fc_act 2 N f / tp, the attention's log-sum-exp B a T / tp.
// With SP the whole ones are row chunks too, so everything is divided by tp:
//   without SP: 4 (4 N h + 4 N + (4 N h + 2 N f + B a T) / tp)
//   with SP:    4 (8 N h + 4 N + 2 N f + B a T) / tp
// (Korthikanti et al.'s sbh(10 + 24/t + 5as/(ht)) against sbh(34 + 5as/h)/t
// has the same shape, for 16-bit values with dropout masks, less their
// attention-core term 5as/h: the memory-efficient attention stores no T^2.)
struct BlockCase {
  int64_t batch, seq, hidden, ffn, heads;
  int tp;
};

int64_t AnalyticBlockBytes(const BlockCase& c, bool sequence_parallel) {
  const int64_t n = c.batch * c.seq;
  const int64_t whole = 4 * n * c.hidden + 4 * n;
  const int64_t split = 4 * n * c.hidden + 2 * n * c.ffn + c.batch * c.heads * c.seq;
  return 4 * (sequence_parallel ? (whole + split) / c.tp : whole + split / c.tp);
}

TEST(SequenceParallelMemoryTest, BlockActivationBytesMatchTheFormula) {
  const ExecContext ctx = ExecContext::Cpu();
  for (const BlockCase& c :
       {BlockCase{2, 8, 16, 64, 4, 2}, BlockCase{3, 6, 16, 32, 2, 2}, BlockCase{1, 4, 16, 64, 4, 4},
        BlockCase{4, 64, 128, 512, 8, 2}, BlockCase{4, 64, 128, 512, 8, 4}}) {
    SCOPED_TRACE(absl::StrCat("B=", c.batch, " T=", c.seq, " h=", c.hidden, " ffn=", c.ffn,
                              " heads=", c.heads, " tp=", c.tp));
    GptConfig config;
    config.set_vocab_size(11);
    config.set_context_length(c.seq);
    config.set_num_layers(1);
    config.set_num_heads(c.heads);
    config.set_hidden_size(c.hidden);
    config.set_ffn_hidden_size(c.ffn);
    int64_t measured[2] = {0, 0};
    absl::Status status = comm::RunLocalRanks(c.tp, [&](int rank, comm::Communicator& world) {
      for (bool sp : {false, true}) {
        const TpGroup tp(&world, sp);
        TransformerBlock block(config, 0, tp, Device::Cpu());
        block.Initialize(ctx, 3);
        const Tensor x = Tensor::Zeros({tp.LocalRows(c.batch * c.seq), c.hidden}, DType::kFloat32,
                                       Device::Cpu());
        BlockActivations acts;
        RETURN_IF_ERROR(block.Forward(ctx, x, c.batch, c.seq, &acts));
        EXPECT_EQ(acts.HeldBytes(), AnalyticBlockBytes(c, sp)) << (sp ? "with SP" : "without SP");
        if (rank == 0) measured[sp] = acts.HeldBytes();
      }
      return absl::OkStatus();
    });
    ASSERT_TRUE(status.ok()) << status;
    std::printf(
        "B=%lld T=%lld h=%lld ffn=%lld heads=%lld tp=%d: %lld bytes per block without "
        "SP, %lld with SP (analytic %lld, %lld)\n",
        static_cast<long long>(c.batch), static_cast<long long>(c.seq),
        static_cast<long long>(c.hidden), static_cast<long long>(c.ffn),
        static_cast<long long>(c.heads), c.tp, static_cast<long long>(measured[0]),
        static_cast<long long>(measured[1]), static_cast<long long>(AnalyticBlockBytes(c, false)),
        static_cast<long long>(AnalyticBlockBytes(c, true)));
  }
}

TEST(SequenceParallelLayoutTest, BadLayoutsAreRefused) {
  const GptConfig config = TinyConfig();
  // SP with a group of one splits nothing.
  StageSpec spec = StageSpec::Whole(config, config.vocab_size());
  spec.sequence_parallel = true;
  auto serial = GptStage::Create(config, spec, TpGroup(), Device::Cpu());
  EXPECT_THAT(serial.status().message(),
              HasSubstr("sequence_parallel=true needs tensor_parallel > 1"));

  absl::Status status = comm::RunLocalRanks(2, [&](int, comm::Communicator& world) {
    // B*T not a multiple of tp: an error naming the numbers, before any traffic.
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> whole,
                     GptStage::Create(config, SequenceParallelSpec(config, 2), TpGroup(&world),
                                      Device::Cpu()));
    const Batch odd = MakeBatch(1, 5, config.vocab_size());
    world.ResetStats();
    auto out = whole->Forward(ExecContext::Cpu(), 0, odd.tokens, odd.targets);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(),
                HasSubstr("1 x 5 = 5 tokens must be a multiple of tensor_parallel=2"));
    EXPECT_EQ(world.stats().calls_of(CommOp::kAllGather) +
                  world.stats().calls_of(CommOp::kReduceScatter),
              0);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace trident::tp
