// The CUDA cross-entropy kernels against their CPU twins (core/ops/
// cross_entropy.h on a CPU context) on the same rounded random logits, outputs
// poisoned with NaN before each run, NaN never passing.
//
// Tolerances: the per-row outputs (losses, logsumexp, row_max, sum_exp,
// target_logit) are fp32 computed from the same stored logits whatever their
// dtype, so they are checked at 1e-5 relative to max(|value|, 1) (losses and
// logsumexp are O(log V); near zero that is an absolute 1e-5). dlogits:
// relative to its terms' scale grad_scale * (p + [j is the target]), with
// p = exp(logit - logsumexp): fp32 1e-5, bf16/fp16 1e-2; padding columns and
// ignored rows must be exactly 0.
//
// The refusal tests use host tensors and run without a GPU; the bad-target test
// is a death test (a trapped kernel poisons the CUDA context) in a child process.

#include "core/cuda/ops/cross_entropy.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/cross_entropy.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::trident::ops::CrossEntropyOptions;

constexpr double kRowTolerance = 1e-5;

const std::shared_ptr<Allocator>& HostAllocator() {
  static const auto* allocator = new std::shared_ptr<Allocator>(CpuAllocator::Create());
  return *allocator;
}

Tensor IdsOn(const std::vector<int32_t>& ids, const std::shared_ptr<Allocator>& allocator) {
  const Tensor t = Tensor::Empty({static_cast<int64_t>(ids.size())}, DType::kInt32, allocator);
  t.CopyFrom(ids);
  return t;
}

Tensor Row(int64_t rows, const std::shared_ptr<Allocator>& gpu) {
  return Poisoned({rows}, DType::kFloat32, gpu);
}

// Targets in [lo, hi), about one row in five set to ignore_index.
std::vector<int32_t> RandomTargets(std::mt19937& rng, int64_t n, int32_t lo, int32_t hi,
                                   int32_t ignore_index) {
  std::uniform_int_distribution<int32_t> uniform(lo, hi - 1);
  std::uniform_int_distribution<int> one_in_five(0, 4);
  std::vector<int32_t> t(n);
  for (int32_t& v : t) v = one_in_five(rng) == 0 ? ignore_index : uniform(rng);
  return t;
}

struct Case {
  DType dtype;
  int64_t rows, cols;
  int64_t valid_columns;  // -1: every column.
  int32_t ignore_index;
  double tolerance;  // dlogits.
  std::string Name() const {
    return absl::StrCat(
        DTypeName(dtype), "_", rows, "x", cols, "_valid", valid_columns < 0 ? cols : valid_columns,
        "_ignore",
        ignore_index < 0 ? absl::StrCat("m", -ignore_index) : absl::StrCat(ignore_index));
  }
};

class CrossEntropyVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(CrossEntropyVsCpuTest, FusedForwardAndBackwardMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Case c = GetParam();
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const ExecContext cpu = ExecContext::Cpu();
  const int64_t rows = c.rows, cols = c.cols;
  const int64_t valid = c.valid_columns < 0 ? cols : c.valid_columns;
  const CrossEntropyOptions options{.ignore_index = c.ignore_index,
                                    .valid_columns = c.valid_columns};
  // Logits spread over [-6, 6): a peaked softmax, as in training.
  const std::vector<float> logits = RandomValues(rng, c.dtype, rows * cols, -6.0f, 6.0f);
  const std::vector<int32_t> targets =
      RandomTargets(rng, rows, 0, static_cast<int32_t>(valid), c.ignore_index);
  const Tensor g_logits = Upload(logits, {rows, cols}, c.dtype, gpu);
  const Tensor h_logits = Upload(logits, {rows, cols}, c.dtype, HostAllocator());
  const Tensor g_targets = IdsOn(targets, gpu);
  const Tensor h_targets = IdsOn(targets, HostAllocator());

  const Tensor losses = Row(rows, gpu), lse = Row(rows, gpu);
  ASSERT_TRUE(CrossEntropyForward(nullptr, g_logits, g_targets, options, losses, lse).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_losses = Tensor::Empty({rows}, DType::kFloat32);
  const Tensor cpu_lse = Tensor::Empty({rows}, DType::kFloat32);
  ops::CrossEntropyForward(cpu, h_logits, h_targets, options, cpu_losses, cpu_lse);
  ExpectCloseRelative(losses.ToFloatVector(), cpu_losses.ToVector<float>(), kRowTolerance, 1.0f,
                      "losses");
  const std::vector<float> expected_lse = cpu_lse.ToVector<float>();
  ExpectCloseRelative(lse.ToFloatVector(), expected_lse, kRowTolerance, 1.0f, "logsumexp");

  // The backward from the CPU's logsumexp (both sides the same input).
  const float grad_scale = 1.0f / 37.0f;
  const Tensor g_lse = Upload(expected_lse, {rows}, DType::kFloat32, gpu);
  const Tensor dlogits = Poisoned({rows, cols}, c.dtype, gpu);
  ASSERT_TRUE(
      CrossEntropyBackward(nullptr, g_logits, g_targets, g_lse, grad_scale, options, dlogits).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_dlogits = Tensor::Empty({rows, cols}, c.dtype);
  ops::CrossEntropyBackward(cpu, h_logits, h_targets, cpu_lse, grad_scale, options, cpu_dlogits);
  std::vector<float> scale(rows * cols, 0.0f);  // 0: must be exactly 0.
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] == c.ignore_index) continue;
    for (int64_t j = 0; j < valid; ++j) {
      scale[r * cols + j] = static_cast<float>(
          grad_scale * (std::exp(static_cast<double>(logits[r * cols + j]) - expected_lse[r]) +
                        (j == targets[r] ? 1.0 : 0.0)));
    }
  }
  const std::vector<float> gpu_dlogits = dlogits.ToFloatVector();
  ExpectClose(gpu_dlogits, cpu_dlogits.ToFloatVector(), scale, c.tolerance, "dlogits");

  // In place (dlogits = logits) gives the same bits.
  ASSERT_TRUE(
      CrossEntropyBackward(nullptr, g_logits, g_targets, g_lse, grad_scale, options, g_logits)
          .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(g_logits.ToFloatVector(), gpu_dlogits, std::vector<float>(rows * cols, 1.0f), 0.0,
              "in-place dlogits");
}

INSTANTIATE_TEST_SUITE_P(DTypesAndShapes, CrossEntropyVsCpuTest,
                         ::testing::Values(
                             // GPT-2's padded vocabulary: 50304 columns, 50257 of them real.
                             Case{DType::kFloat32, 8, 50304, -1, -100, 1e-5},
                             Case{DType::kFloat32, 6, 50304, 50257, -100, 1e-5},
                             Case{DType::kBFloat16, 8, 50304, 50257, -100, 1e-2},
                             Case{DType::kFloat16, 4, 50304, -1, -100, 1e-2},
                             // Odd widths (the scalar path) and another ignore index.
                             Case{DType::kFloat32, 33, 100, 97, -1, 1e-5},
                             Case{DType::kFloat32, 17, 37, -1, 5, 1e-5},
                             Case{DType::kBFloat16, 33, 100, 97, -1, 1e-2}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.Name();
                         });

// A vocabulary shard: the building blocks on the second of two shards of a
// vocabulary of 150 (local columns 80, 72 valid: [78, 150)), against the CPU
// ops with the same options; targets below, inside and in no shard's padding;
// some rows ignored.
TEST(CrossEntropyCudaTest, ShardBuildingBlocksMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const ExecContext cpu = ExecContext::Cpu();
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    SCOPED_TRACE(DTypeName(dtype));
    const int64_t rows = 41, cols = 80;
    const CrossEntropyOptions options{
        .ignore_index = -100, .vocab_start = 78, .valid_columns = 72, .vocab_size = 150};
    const std::vector<float> logits = RandomValues(rng, dtype, rows * cols, -6.0f, 6.0f);
    const std::vector<int32_t> targets = RandomTargets(rng, rows, 0, 150, -100);
    const Tensor g_logits = Upload(logits, {rows, cols}, dtype, gpu);
    const Tensor h_logits = Upload(logits, {rows, cols}, dtype, HostAllocator());
    const Tensor g_targets = IdsOn(targets, gpu);
    const Tensor h_targets = IdsOn(targets, HostAllocator());

    const Tensor row_max = Row(rows, gpu), sum_exp = Row(rows, gpu), target = Row(rows, gpu);
    ASSERT_TRUE(RowMax(nullptr, g_logits, options, row_max).ok());
    ASSERT_TRUE(RowSumExp(nullptr, g_logits, row_max, options, sum_exp).ok());
    ASSERT_TRUE(TargetLogit(nullptr, g_logits, g_targets, options, target).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor cpu_max = Tensor::Empty({rows}, DType::kFloat32);
    const Tensor cpu_sum = Tensor::Empty({rows}, DType::kFloat32);
    const Tensor cpu_target = Tensor::Empty({rows}, DType::kFloat32);
    ops::RowMax(cpu, h_logits, options, cpu_max);
    ops::RowSumExp(cpu, h_logits, cpu_max, options, cpu_sum);
    ops::TargetLogit(cpu, h_logits, h_targets, options, cpu_target);
    // A max and a pick are exact; the sum of exponentials is fp32 arithmetic.
    const std::vector<float> ones(rows, 1.0f);
    ExpectClose(row_max.ToFloatVector(), cpu_max.ToVector<float>(), ones, 0.0, "row_max");
    ExpectClose(target.ToFloatVector(), cpu_target.ToVector<float>(), ones, 0.0, "target_logit");
    ExpectCloseRelative(sum_exp.ToFloatVector(), cpu_sum.ToVector<float>(), kRowTolerance, 1.0f,
                        "sum_exp");

    // Combine (from the CPU's parts on both sides).
    const Tensor losses = Row(rows, gpu), lse = Row(rows, gpu);
    ASSERT_TRUE(CombineCrossEntropyParts(
                    nullptr, Upload(cpu_max.ToVector<float>(), {rows}, DType::kFloat32, gpu),
                    Upload(cpu_sum.ToVector<float>(), {rows}, DType::kFloat32, gpu),
                    Upload(cpu_target.ToVector<float>(), {rows}, DType::kFloat32, gpu), g_targets,
                    options.ignore_index, losses, lse)
                    .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor cpu_losses = Tensor::Empty({rows}, DType::kFloat32);
    const Tensor cpu_lse = Tensor::Empty({rows}, DType::kFloat32);
    ops::CombineCrossEntropyParts(cpu, cpu_max, cpu_sum, cpu_target, h_targets,
                                  options.ignore_index, cpu_losses, cpu_lse);
    ExpectCloseRelative(losses.ToFloatVector(), cpu_losses.ToVector<float>(), kRowTolerance, 1.0f,
                        "losses");
    ExpectCloseRelative(lse.ToFloatVector(), cpu_lse.ToVector<float>(), kRowTolerance, 1.0f,
                        "logsumexp");

    // This shard's gradient: padding columns and other shards' targets honoured.
    const float grad_scale = 0.5f;
    const Tensor dlogits = Poisoned({rows, cols}, dtype, gpu);
    ASSERT_TRUE(
        CrossEntropyBackward(nullptr, g_logits, g_targets,
                             Upload(cpu_lse.ToVector<float>(), {rows}, DType::kFloat32, gpu),
                             grad_scale, options, dlogits)
            .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor cpu_dlogits = Tensor::Empty({rows, cols}, dtype);
    ops::CrossEntropyBackward(cpu, h_logits, h_targets, cpu_lse, grad_scale, options, cpu_dlogits);
    const std::vector<float> lse_values = cpu_lse.ToVector<float>();
    std::vector<float> scale(rows * cols, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      if (targets[r] == options.ignore_index) continue;
      for (int64_t j = 0; j < options.valid_columns; ++j) {
        const bool is_target = targets[r] - options.vocab_start == j;
        scale[r * cols + j] = static_cast<float>(
            grad_scale * (std::exp(static_cast<double>(logits[r * cols + j]) - lse_values[r]) +
                          (is_target ? 1.0 : 0.0)));
      }
    }
    ExpectClose(dlogits.ToFloatVector(), cpu_dlogits.ToFloatVector(), scale,
                dtype == DType::kFloat32 ? 1e-5 : 1e-2, "shard dlogits");
  }
}

// Two shards of a vocabulary of 150 (columns [0, 76) and [76, 150), the
// second padded to 76 local columns with logits of 100 that must not count),
// composed as the vocabulary-parallel head composes them (the all-reduces done
// here on the host), give the single-GPU loss and gradient.
TEST(CrossEntropyCudaTest, TwoShardsComposeToTheWholeVocabulary) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const int64_t rows = 29, vocab = 150, local = 76;
  const std::vector<float> logits = RandomValues(rng, DType::kFloat32, rows * vocab, -6.0f, 6.0f);
  const std::vector<int32_t> targets = RandomTargets(rng, rows, 0, vocab, -100);
  const Tensor g_targets = IdsOn(targets, gpu);

  const Tensor losses = Row(rows, gpu), lse = Row(rows, gpu);
  ASSERT_TRUE(CrossEntropyForward(nullptr, Upload(logits, {rows, vocab}, DType::kFloat32, gpu),
                                  g_targets, {}, losses, lse)
                  .ok());
  const float grad_scale = 0.25f;
  const Tensor whole_dlogits = Poisoned({rows, vocab}, DType::kFloat32, gpu);
  ASSERT_TRUE(CrossEntropyBackward(nullptr, Upload(logits, {rows, vocab}, DType::kFloat32, gpu),
                                   g_targets, lse, grad_scale, {}, whole_dlogits)
                  .ok());

  std::vector<Tensor> shards;
  std::vector<CrossEntropyOptions> options;
  for (int64_t start : {int64_t{0}, local}) {
    const int64_t valid = std::min(local, vocab - start);
    std::vector<float> shard(rows * local, 100.0f);  // Padding: large, must be ignored.
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < valid; ++j) shard[r * local + j] = logits[r * vocab + start + j];
    }
    shards.push_back(Upload(shard, {rows, local}, DType::kFloat32, gpu));
    options.push_back({.vocab_start = start, .valid_columns = valid, .vocab_size = vocab});
  }
  // All-reduce max, then sum of exp about the global max, then sum of target logits.
  std::vector<float> m(rows, -INFINITY), s(rows, 0.0f), t(rows, 0.0f);
  for (int k = 0; k < 2; ++k) {
    const Tensor part = Row(rows, gpu);
    ASSERT_TRUE(RowMax(nullptr, shards[k], options[k], part).ok());
    const std::vector<float> v = part.ToFloatVector();
    for (int64_t r = 0; r < rows; ++r) m[r] = std::max(m[r], v[r]);
  }
  const Tensor g_m = Upload(m, {rows}, DType::kFloat32, gpu);
  for (int k = 0; k < 2; ++k) {
    const Tensor sum_part = Row(rows, gpu), target_part = Row(rows, gpu);
    ASSERT_TRUE(RowSumExp(nullptr, shards[k], g_m, options[k], sum_part).ok());
    ASSERT_TRUE(TargetLogit(nullptr, shards[k], g_targets, options[k], target_part).ok());
    const std::vector<float> sv = sum_part.ToFloatVector(), tv = target_part.ToFloatVector();
    for (int64_t r = 0; r < rows; ++r) {
      s[r] += sv[r];
      t[r] += tv[r];
    }
  }
  const Tensor composed_losses = Row(rows, gpu), composed_lse = Row(rows, gpu);
  ASSERT_TRUE(CombineCrossEntropyParts(nullptr, g_m, Upload(s, {rows}, DType::kFloat32, gpu),
                                       Upload(t, {rows}, DType::kFloat32, gpu), g_targets, -100,
                                       composed_losses, composed_lse)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectCloseRelative(composed_losses.ToFloatVector(), losses.ToFloatVector(), kRowTolerance, 1.0f,
                      "composed losses");
  ExpectCloseRelative(composed_lse.ToFloatVector(), lse.ToFloatVector(), kRowTolerance, 1.0f,
                      "composed logsumexp");

  // Each shard's gradient is its columns of the whole gradient; padding is 0.
  const std::vector<float> whole = whole_dlogits.ToFloatVector();
  for (int k = 0; k < 2; ++k) {
    const Tensor dshard = Poisoned({rows, local}, DType::kFloat32, gpu);
    ASSERT_TRUE(CrossEntropyBackward(nullptr, shards[k], g_targets, composed_lse, grad_scale,
                                     options[k], dshard)
                    .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> expected(rows * local, 0.0f), scale(rows * local, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t j = 0; j < options[k].valid_columns; ++j) {
        const float w = whole[r * vocab + options[k].vocab_start + j];
        expected[r * local + j] = w;
        // grad_scale bounds each element's terms (p <= 1, one-hot <= 1).
        scale[r * local + j] = targets[r] == -100 ? 0.0f : 2.0f * grad_scale;
      }
    }
    ExpectClose(dshard.ToFloatVector(), expected, scale, kRowTolerance,
                absl::StrCat("shard ", k, " dlogits"));
  }
}

TEST(CrossEntropyCudaTest, CountTargetsSkipsTheIgnoreIndex) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  for (int64_t n : {1, 37, 8192, 70001}) {
    const std::vector<int32_t> targets = RandomTargets(rng, n, 0, 50257, -100);
    int64_t expected = 0;
    for (int32_t t : targets) expected += t != -100;
    const absl::StatusOr<int64_t> count = CountTargets(nullptr, IdsOn(targets, gpu), -100);
    ASSERT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count, expected) << n << " targets";
    // Another ignore index counts every -100.
    const absl::StatusOr<int64_t> all = CountTargets(nullptr, IdsOn(targets, gpu), -1);
    ASSERT_TRUE(all.ok()) << all.status();
    EXPECT_EQ(*all, n);
  }
}

TEST(CrossEntropyCudaDeathTest, ATargetOutsideTheVocabularyTraps) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // A fresh process and CUDA context.
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Tensor logits = Tensor::Zeros({3, 16}, DType::kFloat32, gpu);
  const Tensor bad = IdsOn({1, 16, 2}, gpu);  // 16 is past the vocabulary of 16.
  const Tensor losses = Row(3, gpu), lse = Row(3, gpu);
  EXPECT_DEATH(LaunchSyncAndAbortOnError(
                   [&] { return CrossEntropyForward(nullptr, logits, bad, {}, losses, lse); }),
               "synchronised: cudaError");
  EXPECT_DEATH(LaunchSyncAndAbortOnError([&] {
                 return CrossEntropyBackward(nullptr, logits, bad, lse, 1.0f, {}, logits);
               }),
               "synchronised: cudaError");
  // The ignore index is no error.
  LaunchSyncAndAbortOnError([&] {
    return CrossEntropyForward(nullptr, logits, IdsOn({1, -100, 2}, gpu), {}, losses, lse);
  });
}

// --- Refusals: host tensors, no GPU needed. ---

std::string RefusalOf(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(CrossEntropyCudaTest, RefusesBadArgumentsByName) {
  const Tensor logits = Tensor::Zeros({4, 50}, DType::kFloat32);
  const Tensor targets = Tensor::Zeros({4}, DType::kInt32);
  const Tensor row = Tensor::Zeros({4}, DType::kFloat32);
  const Tensor row2 = Tensor::Zeros({4}, DType::kFloat32);

  EXPECT_EQ(RefusalOf(RowMax(nullptr, logits, {.valid_columns = 60}, row)),
            "RowMax: options.valid_columns is 60, expected -1 or in [0, 50] (the columns of "
            "logits)");
  EXPECT_EQ(RefusalOf(RowMax(nullptr, logits, {.valid_columns = 0}, row)),
            "RowMax: no valid columns (options.valid_columns is 0)");
  EXPECT_EQ(RefusalOf(RowSumExp(nullptr, logits, row, {.vocab_start = -2}, row2)),
            "RowSumExp: options.vocab_start is -2, expected >= 0");
  EXPECT_EQ(
      RefusalOf(TargetLogit(nullptr, logits, targets,
                            {.vocab_start = 100, .valid_columns = 48, .vocab_size = 120}, row)),
      "TargetLogit: options.vocab_size is 120, expected -1 or at least vocab_start + "
      "valid_columns = 148");
  EXPECT_EQ(RefusalOf(TargetLogit(nullptr, logits, Tensor::Zeros({4}, DType::kFloat32), {}, row)),
            "TargetLogit: targets has dtype fp32, expected int32");
  EXPECT_EQ(RefusalOf(CrossEntropyForward(nullptr, logits, targets,
                                          {.vocab_start = 50, .vocab_size = 100}, row, row2)),
            "CrossEntropyForward: needs logits over the whole vocabulary (options.vocab_start 50, "
            "50 valid columns of options.vocab_size 100): compose the building blocks for a "
            "vocabulary shard");
  EXPECT_EQ(RefusalOf(CrossEntropyForward(nullptr, logits, targets, {},
                                          Tensor::Zeros({4}, DType::kBFloat16), row2)),
            "CrossEntropyForward: losses has dtype bf16, expected fp32");
  EXPECT_EQ(RefusalOf(CrossEntropyForward(nullptr, Tensor::Zeros({4, 5, 10}, DType::kFloat32),
                                          targets, {}, row, row2)),
            "CrossEntropyForward: logits has shape [4, 5, 10], expected [N, V]");
  EXPECT_EQ(RefusalOf(CrossEntropyForward(nullptr, logits, Tensor::Zeros({5}, DType::kInt32), {},
                                          row, row2)),
            "CrossEntropyForward: targets has 5 elements (shape [5]), expected 4");
  EXPECT_EQ(RefusalOf(CrossEntropyForward(nullptr, logits, targets, {}, row, row2)),
            "CrossEntropyForward: logits is on cpu, expected a CUDA device");
  EXPECT_EQ(RefusalOf(CrossEntropyBackward(nullptr, logits, targets, row, 1.0f, {},
                                           Tensor::Zeros({4, 50}, DType::kFloat16))),
            "CrossEntropyBackward: dlogits has dtype fp16, expected fp32 (the dtype of logits)");
  EXPECT_EQ(RefusalOf(CrossEntropyBackward(nullptr, logits, targets, row, NAN, {}, logits)),
            "CrossEntropyBackward: grad_scale is nan, expected a finite value");
  EXPECT_EQ(RefusalOf(CombineCrossEntropyParts(
                nullptr, row, row2, Tensor::Zeros({3}, DType::kFloat32), targets, -100, row, row2)),
            "CombineCrossEntropyParts: target_logit has 3 elements (shape [3]), expected 4");
  EXPECT_EQ(RefusalOf(CountTargets(nullptr, targets, -100).status()),
            "CountTargets: targets is on cpu, expected a CUDA device");
}

}  // namespace
}  // namespace trident::cuda
