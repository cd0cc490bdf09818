#include "core/ops/embedding.h"

#include <vector>

#include "core/exec_context.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;
using testing::ToDouble;

constexpr int64_t kBatch = 2, kSeq = 5, kVocab = 11, kPositions = 8, kWidth = 300;

Tensor Tokens() {
  // Repeated ids (3 and 7) exercise the scatter-add.
  return Tensor::FromVector<int32_t>({3, 7, 3, 0, 10, 7, 7, 1, 3, 9}, {kBatch, kSeq});
}

std::vector<double> RefForward(const std::vector<int32_t>& tokens, const std::vector<double>& wte,
                               const std::vector<double>& wpe) {
  std::vector<double> out(kBatch * kSeq * kWidth);
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t t = 0; t < kSeq; ++t) {
      const int32_t id = tokens[b * kSeq + t];
      for (int64_t c = 0; c < kWidth; ++c) {
        out[(b * kSeq + t) * kWidth + c] = wte[id * kWidth + c] + wpe[t * kWidth + c];
      }
    }
  }
  return out;
}

TEST(EmbeddingTest, ForwardMatchesReference) {
  Tensor tokens = Tokens();
  Tensor wte = RandomTensor({kVocab, kWidth}, 1), wpe = RandomTensor({kPositions, kWidth}, 2);
  for (int threads : {1, 2}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Tensor out = Tensor::Empty({kBatch, kSeq, kWidth}, DType::kFloat32);
    EmbeddingForward(ctx, tokens, wte, wpe, out);
    EXPECT_TRUE(NearRelative(out.ToVector<float>(),
                             RefForward(tokens.ToVector<int32_t>(), ToDouble(wte.ToVector<float>()),
                                        ToDouble(wpe.ToVector<float>())),
                             1e-7));
  }
}

// L = sum(out * w): the accumulated table gradients against central
// differences (the op is linear in the tables, so this pins the scatter-add).
TEST(EmbeddingTest, BackwardAccumulatesGradientsMatchingFiniteDifferences) {
  Tensor tokens = Tokens();
  const std::vector<int32_t> ids = tokens.ToVector<int32_t>();
  Tensor wte = RandomTensor({kVocab, kWidth}, 3), wpe = RandomTensor({kPositions, kWidth}, 4);
  Tensor w = RandomTensor({kBatch, kSeq, kWidth}, 5);
  const std::vector<double> wd = ToDouble(w.ToVector<float>());
  const std::vector<double> wte_d = ToDouble(wte.ToVector<float>());
  const std::vector<double> wpe_d = ToDouble(wpe.ToVector<float>());
  ExecContext ctx = ExecContext::Cpu(2);
  Tensor dwte = Tensor::FromVector(std::vector<float>(kVocab * kWidth, 0.25f), {kVocab, kWidth});
  Tensor dwpe =
      Tensor::FromVector(std::vector<float>(kPositions * kWidth, -1.0f), {kPositions, kWidth});
  EmbeddingBackward(ctx, tokens, w, dwte, dwpe);
  std::vector<double> g_wte = testing::NumericGradient(
      [&](const std::vector<double>& v) { return testing::Dot(RefForward(ids, v, wpe_d), wd); },
      wte_d, 1e-3);
  std::vector<double> g_wpe = testing::NumericGradient(
      [&](const std::vector<double>& v) { return testing::Dot(RefForward(ids, wte_d, v), wd); },
      wpe_d, 1e-3);
  for (double& g : g_wte) g += 0.25;
  for (double& g : g_wpe) g -= 1.0;
  EXPECT_TRUE(NearRelative(dwte.ToVector<float>(), g_wte, 1e-6));
  EXPECT_TRUE(NearRelative(dwpe.ToVector<float>(), g_wpe, 1e-6));

  // Skipping one gradient leaves nothing else touched.
  Tensor dwpe_only = Tensor::Zeros({kPositions, kWidth}, DType::kFloat32);
  EmbeddingBackward(ctx, tokens, w, Tensor(), dwpe_only);
  std::vector<double> g_wpe_only = g_wpe;
  for (double& g : g_wpe_only) g += 1.0;
  EXPECT_TRUE(NearRelative(dwpe_only.ToVector<float>(), g_wpe_only, 1e-6));
}

// A vocabulary-parallel lookup: each shard gathers its own rows (zeros for the
// rest) and the shards' outputs sum to the full lookup; each shard's
// scatter-add is the matching slice of the full gradient.
TEST(EmbeddingTest, ShardedGatherAndScatterComposeToTheFullTable) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor tokens = Tokens();
  Tensor wte = RandomTensor({kVocab, kWidth}, 6);
  Tensor dout = RandomTensor({kBatch * kSeq, kWidth}, 7);
  Tensor full = Tensor::Empty({kBatch * kSeq, kWidth}, DType::kFloat32);
  GatherRows(ctx, tokens, wte, 0, full);
  Tensor dfull = Tensor::Zeros({kVocab, kWidth}, DType::kFloat32);
  ScatterAddRows(ctx, tokens, dout, 0, dfull);

  std::vector<double> summed(kBatch * kSeq * kWidth, 0.0);
  const std::vector<float> dfull_v = dfull.ToVector<float>();
  for (auto [start, rows] : {std::pair<int64_t, int64_t>{0, 4}, {4, 4}, {8, 3}}) {
    Tensor shard = wte.Slice(0, start, rows);
    Tensor part = Tensor::Empty({kBatch * kSeq, kWidth}, DType::kFloat32);
    GatherRows(ctx, tokens, shard, start, part);
    const std::vector<float> pv = part.ToVector<float>();
    for (size_t i = 0; i < summed.size(); ++i) summed[i] += pv[i];
    Tensor dshard = Tensor::Zeros({rows, kWidth}, DType::kFloat32);
    ScatterAddRows(ctx, tokens, dout, start, dshard);
    EXPECT_EQ(dshard.ToVector<float>(),
              std::vector<float>(dfull_v.begin() + start * kWidth,
                                 dfull_v.begin() + (start + rows) * kWidth));
  }
  EXPECT_TRUE(NearRelative(full.ToVector<float>(), summed, 0.0));
}

TEST(EmbeddingTest, PositionBuildingBlocks) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor wpe = RandomTensor({kPositions, kWidth}, 8);
  Tensor out = Tensor::Zeros({kBatch, kSeq, kWidth}, DType::kFloat32);
  AddPositionEmbedding(ctx, wpe, out);
  const std::vector<float> ov = out.ToVector<float>(), wv = wpe.ToVector<float>();
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t i = 0; i < kSeq * kWidth; ++i) ASSERT_EQ(ov[b * kSeq * kWidth + i], wv[i]);
  }
  Tensor dwpe = Tensor::Zeros({kPositions, kWidth}, DType::kFloat32);
  PositionEmbeddingGrad(ctx, out, dwpe);
  const std::vector<float> gv = dwpe.ToVector<float>();
  for (int64_t i = 0; i < kPositions * kWidth; ++i) {
    ASSERT_EQ(gv[i], i < kSeq * kWidth ? 2.0f * wv[i] : 0.0f);
  }
}

TEST(EmbeddingDeathTest, BadIdsAndShapesAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor wte = Tensor::Zeros({kVocab, 4}, DType::kFloat32),
         wpe = Tensor::Zeros({kPositions, 4}, DType::kFloat32);
  Tensor out = Tensor::Empty({1, 2, 4}, DType::kFloat32);
  EXPECT_DEATH(EmbeddingForward(ctx, Tensor::FromVector<int32_t>({1, 11}, {1, 2}), wte, wpe, out),
               "token id 11 is outside the table's rows \\[0, 11\\)");
  EXPECT_DEATH(EmbeddingForward(ctx, Tensor::FromVector<int32_t>({1, -1}, {1, 2}), wte, wpe, out),
               "token id -1 is outside");
  Tensor dwte = Tensor::Zeros({kVocab, 4}, DType::kFloat32);
  EXPECT_DEATH(
      EmbeddingBackward(ctx, Tensor::FromVector<int32_t>({1, 12}, {1, 2}), out, dwte, Tensor()),
      "token id 12 is outside");
  Tensor long_out = Tensor::Empty({1, 9, 4}, DType::kFloat32);
  EXPECT_DEATH(AddPositionEmbedding(ctx, wpe, long_out), "needs wpe \\[P >= 9, 4\\]");
  EXPECT_DEATH(GatherRows(ctx, Tensor::FromVector<int64_t>({1}, {1}), wte, 0, out),
               "ids is int64\\[1\\] cpu but must be int32");
}

}  // namespace
}  // namespace trident::ops
