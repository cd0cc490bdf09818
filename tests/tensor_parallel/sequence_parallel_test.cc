// Sequence parallelism (Korthikanti et al. 2022): the row-chunk collectives of
// TpGroup, the tp traffic of one forward + backward as the communicator counts
// it, and the errors of layouts it cannot run. (Equality with the serial model
// over 20 training steps: model_equivalence_test.)
//
// Traffic with B*T tokens, hidden h, L blocks, fp32 (4 bytes), A = B*T*h*4
// bytes. The local communicator counts a reduce-scatter by its input and an
// all-gather by its output, so each collective below counts A:
//   forward:  reduce-scatter 1 (embedding) + 2 per block (attn.c_proj, mlp.c_proj)
//             all-gather     2 per block (before c_attn, c_fc) + 1 (before the head)
//             all-reduce     3 of B*T*4 in the vocab-parallel loss (max, sum-exp,
//                            target logit), as without SP
//   backward: all-gather     2 per block (dy of mlp.c_proj, attn.c_proj) + 1
//                            (the embedding gradient, for wte and wpe)
//             reduce-scatter 2 per block (dx of c_fc, c_attn) + 1 (the head's dx)
//   per step: all-reduce     the partial LayerNorm gradients, 2 (weight, bias) per
//                            LayerNorm, 2L + 1 LayerNorms, of h*4 bytes each
//                            (GptStage::ReduceSequenceParallelGradients).
// So SP replaces each all-reduce of A by one reduce-scatter + one all-gather of
// A (the same ring traffic), and the LayerNorms and residual adds between them
// run on B*T/tp rows.

#include <cstdint>
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
#include "transformer/gpt_stage.h"

namespace trident::tp {
namespace {

using comm::CommOp;
using comm::CommStats;
using test_support::Batch;
using test_support::MakeBatch;
using test_support::TinyConfig;
using ::testing::HasSubstr;
using transformer::GptConfig;
using transformer::GptStage;
using transformer::StageSpec;

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
  return {0, 0, 2 * layers + 1, (2 * layers + 1) * activation, 2 * layers + 1,
          (2 * layers + 1) * activation};
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
  EXPECT_EQ(b.all_gather_calls + b.reduce_scatter_calls, 14);
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

TEST(SequenceParallelLayoutTest, BadLayoutsAreRefused) {
  const GptConfig config = TinyConfig();
  // SP with a group of one splits nothing.
  StageSpec spec = StageSpec::Whole(config, config.vocab_size());
  spec.sequence_parallel = true;
  auto serial = GptStage::Create(config, spec, TpGroup(), Device::Cpu());
  EXPECT_THAT(serial.status().message(),
              HasSubstr("sequence_parallel=true needs tensor_parallel > 1"));

  // A pipeline stage without the embedding: not built yet, and said so.
  StageSpec middle = SequenceParallelSpec(config, 1);
  middle.first_layer = 1;
  middle.num_layers = 2;
  middle.has_embedding = false;
  absl::Status status = comm::RunLocalRanks(2, [&](int, comm::Communicator& world) {
    StageSpec m = middle;
    m.padded_vocab = 12;
    auto stage = GptStage::Create(config, m, TpGroup(&world), Device::Cpu());
    EXPECT_EQ(stage.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(stage.status().message(), HasSubstr("starting at layer 1"));

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
