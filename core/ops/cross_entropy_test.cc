#include "core/ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduction.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;
using testing::ToDouble;

constexpr int32_t kIgnore = -100;

// Per-row losses (0 when ignored) and logsumexp in double over the first
// `valid` columns.
struct RefCe {
  std::vector<double> losses, lse;
};

RefCe RefCrossEntropy(const std::vector<double>& logits, const std::vector<int32_t>& targets,
                      int64_t cols, int64_t valid) {
  const int64_t n = static_cast<int64_t>(targets.size());
  RefCe r{std::vector<double>(n), std::vector<double>(n)};
  for (int64_t i = 0; i < n; ++i) {
    const double* row = logits.data() + i * cols;
    const double m = *std::max_element(row, row + valid);
    double s = 0.0;
    for (int64_t j = 0; j < valid; ++j) s += std::exp(row[j] - m);
    r.lse[i] = m + std::log(s);
    r.losses[i] = targets[i] == kIgnore ? 0.0 : r.lse[i] - row[targets[i]];
  }
  return r;
}

double RefMeanLoss(const std::vector<double>& logits, const std::vector<int32_t>& targets,
                   int64_t cols, int64_t valid) {
  const RefCe r = RefCrossEntropy(logits, targets, cols, valid);
  double sum = 0.0;
  int64_t count = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    sum += r.losses[i];
    count += targets[i] != kIgnore;
  }
  return sum / count;
}

struct Outputs {
  Tensor losses, lse;
};

Outputs Forward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                const CrossEntropyOptions& options = {}) {
  Outputs o{Tensor::Empty({logits.dim(0)}, DType::kFloat32),
            Tensor::Empty({logits.dim(0)}, DType::kFloat32)};
  CrossEntropyForward(ctx, logits, targets, options, o.losses, o.lse);
  return o;
}

TEST(CrossEntropyTest, ForwardMatchesReference) {
  for (int64_t vocab : {37, 5000}) {
    Tensor logits = RandomTensor({6, vocab}, 1, 8.0f);
    Tensor targets =
        Tensor::FromVector<int32_t>({0, static_cast<int32_t>(vocab - 1), kIgnore, 5, 17, 3}, {6});
    for (int threads : {1, 2}) {
      ExecContext ctx = ExecContext::Cpu(threads);
      Outputs o = Forward(ctx, logits, targets);
      const RefCe ref = RefCrossEntropy(ToDouble(logits.ToVector<float>()),
                                        targets.ToVector<int32_t>(), vocab, vocab);
      EXPECT_TRUE(NearRelative(o.losses.ToVector<float>(), ref.losses, 1e-5)) << vocab;
      EXPECT_TRUE(NearRelative(o.lse.ToVector<float>(), ref.lse, 1e-5)) << vocab;
      EXPECT_EQ(o.losses.ToVector<float>()[2], 0.0f);  // The ignored row.
    }
  }
}

// The mean loss over non-ignored rows: CrossEntropyBackward with
// grad_scale = 1 / count against central differences of the reference mean.
TEST(CrossEntropyTest, BackwardOfTheMeanLossMatchesFiniteDifferences) {
  const int64_t n = 5, vocab = 9;
  Tensor logits = RandomTensor({n, vocab}, 2, 3.0f);
  Tensor targets = Tensor::FromVector<int32_t>({4, kIgnore, 0, 8, 4}, {n});
  const std::vector<int32_t> tv = targets.ToVector<int32_t>();
  ExecContext ctx = ExecContext::Cpu();
  Outputs o = Forward(ctx, logits, targets);
  const int64_t count = CountTargets(ctx, targets, kIgnore);
  EXPECT_EQ(count, 4);
  Tensor dlogits = Tensor::Empty({n, vocab}, DType::kFloat32);
  CrossEntropyBackward(ctx, logits, targets, o.lse, 1.0f / count, {}, dlogits);
  const std::vector<double> numeric = testing::NumericGradient(
      [&](const std::vector<double>& x) { return RefMeanLoss(x, tv, vocab, vocab); },
      ToDouble(logits.ToVector<float>()));
  EXPECT_TRUE(NearRelative(dlogits.ToVector<float>(), numeric, 1e-5));
  // The mean loss itself: Sum(losses) / count.
  EXPECT_NEAR(Sum(ctx, o.losses) / count,
              RefMeanLoss(ToDouble(logits.ToVector<float>()), tv, vocab, vocab), 1e-6);
}

TEST(CrossEntropyTest, IgnoredRowsHaveNoLossAndNoGradient) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor logits = RandomTensor({4, 6}, 3);
  Tensor targets = Tensor::FromVector<int32_t>({kIgnore, 2, kIgnore, kIgnore}, {4});
  EXPECT_EQ(CountTargets(ctx, targets, kIgnore), 1);
  Outputs o = Forward(ctx, logits, targets);
  Tensor dlogits = Tensor::Empty({4, 6}, DType::kFloat32);
  Fill(ctx, dlogits, 7.0f);  // Overwritten, never accumulated.
  CrossEntropyBackward(ctx, logits, targets, o.lse, 1.0f, {}, dlogits);
  const std::vector<float> loss = o.losses.ToVector<float>(), grad = dlogits.ToVector<float>();
  for (int64_t r : {0, 2, 3}) {
    EXPECT_EQ(loss[r], 0.0f);
    for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(grad[r * 6 + j], 0.0f);
  }
  EXPECT_GT(loss[1], 0.0f);
  double row_sum = 0.0;  // softmax - onehot sums to zero.
  for (int64_t j = 0; j < 6; ++j) row_sum += grad[6 + j];
  EXPECT_NEAR(row_sum, 0.0, 1e-6);
  // A custom ignore index.
  CrossEntropyOptions options;
  options.ignore_index = 2;
  Tensor t2 = Tensor::FromVector<int32_t>({2, 1, 0, 2}, {4});
  Outputs o2 = Forward(ctx, logits, t2, options);
  EXPECT_EQ(o2.losses.ToVector<float>()[0], 0.0f);
  EXPECT_EQ(o2.losses.ToVector<float>()[3], 0.0f);
  EXPECT_EQ(CountTargets(ctx, t2, 2), 2);
}

TEST(CrossEntropyTest, BackwardInPlaceOverTheLogits) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor logits = RandomTensor({3, 50}, 4);
  Tensor targets = Tensor::FromVector<int32_t>({1, 49, kIgnore}, {3});
  Outputs o = Forward(ctx, logits, targets);
  Tensor separate = Tensor::Empty({3, 50}, DType::kFloat32);
  CrossEntropyBackward(ctx, logits, targets, o.lse, 0.5f, {}, separate);
  CrossEntropyBackward(ctx, logits, targets, o.lse, 0.5f, {}, logits);
  EXPECT_EQ(logits.ToVector<float>(), separate.ToVector<float>());
}

TEST(CrossEntropyTest, PaddingColumnsAreExcluded) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t vocab = 13, padded = 16;
  Tensor logits = RandomTensor({4, padded}, 5, 4.0f);
  Tensor targets = Tensor::FromVector<int32_t>({12, 0, 7, kIgnore}, {4});
  CrossEntropyOptions options;
  options.valid_columns = vocab;
  Outputs o = Forward(ctx, logits, targets, options);
  const RefCe ref = RefCrossEntropy(ToDouble(logits.ToVector<float>()), targets.ToVector<int32_t>(),
                                    padded, vocab);
  EXPECT_TRUE(NearRelative(o.losses.ToVector<float>(), ref.losses, 1e-5));
  Tensor dlogits = Tensor::Empty({4, padded}, DType::kFloat32);
  CrossEntropyBackward(ctx, logits, targets, o.lse, 1.0f, options, dlogits);
  const std::vector<float> g = dlogits.ToVector<float>();
  for (int64_t r = 0; r < 4; ++r) {
    for (int64_t j = vocab; j < padded; ++j) EXPECT_EQ(g[r * padded + j], 0.0f);
  }
}

// Vocabulary parallelism with two shards of 10 columns over a vocabulary of 17
// padded to 20: composing the building blocks (the sums and max standing in for
// the tp all-reduces) gives the full op's losses, and each shard's backward
// gives its columns of the full gradient.
TEST(CrossEntropyTest, VocabularyShardsComposeToTheFullLoss) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t n = 5, vocab = 17, shard_cols = 10;
  Tensor logits = RandomTensor({n, 2 * shard_cols}, 6, 5.0f);
  Tensor targets = Tensor::FromVector<int32_t>({3, 16, kIgnore, 10, 9}, {n});
  CrossEntropyOptions full_options;
  full_options.valid_columns = vocab;
  Outputs full = Forward(ctx, logits, targets, full_options);
  Tensor full_grad = Tensor::Empty({n, 2 * shard_cols}, DType::kFloat32);
  CrossEntropyBackward(ctx, logits, targets, full.lse, 0.25f, full_options, full_grad);

  std::vector<Tensor> shards;
  std::vector<CrossEntropyOptions> options(2);
  for (int s = 0; s < 2; ++s) {
    shards.push_back(Contiguous(ctx, logits.Slice(1, s * shard_cols, shard_cols)));
    options[s].vocab_start = s * shard_cols;
    options[s].vocab_size = vocab;
    options[s].valid_columns = std::min(shard_cols, vocab - s * shard_cols);
  }
  auto row = [&] { return Tensor::Empty({n}, DType::kFloat32); };
  std::vector<float> max(n, -INFINITY), sum_exp(n, 0.0f), target(n, 0.0f);
  for (int s = 0; s < 2; ++s) {
    Tensor m = row();
    RowMax(ctx, shards[s], options[s], m);
    const std::vector<float> mv = m.ToVector<float>();
    for (int64_t i = 0; i < n; ++i) max[i] = std::max(max[i], mv[i]);
  }
  Tensor global_max = Tensor::FromVector(max, {n});
  for (int s = 0; s < 2; ++s) {
    Tensor se = row(), tl = row();
    RowSumExp(ctx, shards[s], global_max, options[s], se);
    TargetLogit(ctx, shards[s], targets, options[s], tl);
    const std::vector<float> sv = se.ToVector<float>(), tv = tl.ToVector<float>();
    for (int64_t i = 0; i < n; ++i) {
      sum_exp[i] += sv[i];
      target[i] += tv[i];
    }
  }
  Tensor losses = row(), lse = row();
  CombineCrossEntropyParts(ctx, global_max, Tensor::FromVector(sum_exp, {n}),
                           Tensor::FromVector(target, {n}), targets, kIgnore, losses, lse);
  EXPECT_TRUE(
      NearRelative(losses.ToVector<float>(), ToDouble(full.losses.ToVector<float>()), 1e-6));
  EXPECT_TRUE(NearRelative(lse.ToVector<float>(), ToDouble(full.lse.ToVector<float>()), 1e-6));
  for (int s = 0; s < 2; ++s) {
    Tensor grad = Tensor::Empty({n, shard_cols}, DType::kFloat32);
    CrossEntropyBackward(ctx, shards[s], targets, lse, 0.25f, options[s], grad);
    EXPECT_TRUE(NearRelative(
        grad.ToVector<float>(),
        ToDouble(full_grad.Slice(1, s * shard_cols, shard_cols).ToVector<float>()), 1e-6))
        << "shard " << s;
  }
}

TEST(CrossEntropyDeathTest, BadTargetsAndShapesAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor logits = Tensor::Zeros({2, 5}, DType::kFloat32);
  Tensor out = Tensor::Empty({2}, DType::kFloat32);
  EXPECT_DEATH(
      CrossEntropyForward(ctx, logits, Tensor::FromVector<int32_t>({1, 5}, {2}), {}, out, out),
      "target 5 is outside the vocabulary \\[0, 5\\) and is not the ignore index -100");
  EXPECT_DEATH(
      CrossEntropyForward(ctx, logits, Tensor::FromVector<int32_t>({1}, {1}), {}, out, out),
      "targets is int32\\[1\\] cpu but must have 2 elements");
  CrossEntropyOptions shard;
  shard.vocab_start = 5;
  shard.vocab_size = 10;
  EXPECT_DEATH(
      CrossEntropyForward(ctx, logits, Tensor::FromVector<int32_t>({1, 2}, {2}), shard, out, out),
      "needs logits over the whole vocabulary");
}

}  // namespace
}  // namespace trident::ops
