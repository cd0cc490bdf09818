// training/memory_estimate against what ranks hold: for the default model in
// the serial layout times dp (dp 1, 2, 4, 8) under every ZeRO stage, one
// training step of the trainer's own StepRunner, then its measured memory
// (StepRunner::MemoryInUse, the figures of the metrics file's memory lines)
// against EstimateRankMemory field by field, and against the analytic
// per-stage rules the README's table states (fp32, Ψ parameters per rank):
//   stage 0: parameters Ψ, gradients Ψ, optimizer state 2Ψ;
//   stage 1: optimizer state 2Ψ / dp, gradients still Ψ (in place);
//   stage 2: gradients Ψ_pooled / dp + kept in full + 2 pool buffers;
//   stage 3: parameters Ψ / dp + the largest gathered pair of layers.
// Tolerance: the padding of every bucket (and pool buffer) to a multiple of
// dp, under dp elements of 4 bytes each, which the estimate does not count.
// Printed: the table of README "Memory per rank under ZeRO".

#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "training/batch_geometry.h"
#include "training/default_config.h"
#include "training/memory_estimate.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

namespace trident::testing {
namespace {

struct Measured {
  training::RankMemory memory;
  int64_t buckets = 0;
};

training::TrainConfig DefaultModelAt(int dp, int zero_stage) {
  training::TrainConfig config = *training::DefaultTrainConfig();
  topology::ParallelLayout& layout = *config.mutable_layout();
  layout.set_tensor_parallel(1);
  layout.set_pipeline_parallel(1);
  layout.set_data_parallel(dp);
  layout.set_micro_batch_size(1);
  layout.set_num_micro_batches(1);
  layout.set_global_batch_size(dp);
  layout.set_zero_stage(zero_stage);
  config.set_steps(1);
  return config;
}

// Rank 0's memory after one step.
Measured Measure(const training::TrainConfig& config) {
  absl::Mutex mu;
  Measured measured;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    Tensor inputs, targets;
    training::SyntheticRows(/*seed=*/7, /*step=*/0,
                            r.batch.ReplicaRows(r.grid.CoordinatesOf(r.rank).dp),
                            r.batch.seq_length, config.model().vocab_size(), &inputs, &targets);
    RETURN_IF_ERROR(
        r.runner.TrainStep(0, inputs, targets, r.batch.tokens_per_step()).status());
    if (r.rank == 0) {
      absl::MutexLock lock(&mu);
      measured.memory = r.runner.MemoryInUse();
      measured.buckets = static_cast<int64_t>(r.runner.gradient_reducer().buckets().size());
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return measured;
}

double Mb(int64_t bytes) { return bytes / 1e6; }

TEST(ZeroMemoryEstimate, MatchesTheMeasuredMemoryForEveryStageAndDp) {
  const Measured serial = Measure(DefaultModelAt(1, 0));
  const int64_t psi = serial.memory.param_bytes;  // 4 bytes x Ψ
  ASSERT_EQ(psi, 4 * 842496) << "the default model's parameters";
  std::printf("| dp | ZeRO | parameters | gradients | optimizer state | activation peak | total "
              "| formula (params + grads + state) | estimate (params + grads + state) |\n");
  for (int dp : {1, 2, 4, 8}) {
    for (int zero = 0; zero <= 3; ++zero) {
      if (dp == 1 && zero > 0) continue;  // A no-op at dp 1 (the trainer says so).
      SCOPED_TRACE(absl::StrCat("dp=", dp, " zero_stage=", zero));
      const training::TrainConfig config = DefaultModelAt(dp, zero);
      const Measured m = Measure(config);
      const absl::StatusOr<training::MemoryEstimate> estimate =
          training::EstimateRankMemory(config);
      ASSERT_TRUE(estimate.ok()) << estimate.status();
      const double padding = 4.0 * dp * (m.buckets + 2);
      EXPECT_NEAR(m.memory.param_bytes, estimate->parameter_bytes, padding);
      EXPECT_NEAR(m.memory.grad_bytes, estimate->gradient_bytes, padding);
      EXPECT_NEAR(m.memory.optimizer_state_bytes, estimate->optimizer_state_bytes, padding);
      // The per-stage rules, from the measured figures themselves.
      if (zero <= 1) {
        EXPECT_NEAR(m.memory.grad_bytes, psi, padding) << "stage 1 reduce-scatters in place";
      }
      if (zero >= 1) EXPECT_NEAR(m.memory.optimizer_state_bytes, 2.0 * psi / dp, padding);
      if (zero <= 2) EXPECT_EQ(m.memory.param_bytes, psi);
      if (zero >= 2 && dp >= 4) {
        EXPECT_LT(m.memory.grad_bytes, psi) << "sharded gradients plus the pool";
      }
      if (zero == 3) EXPECT_LT(m.memory.param_bytes, psi);
      // DeepSpeed's formula with fp32 everywhere (K = 8: two fp32 moments, no
      // separate master copy): 4Ψ + 4Ψ + 8Ψ/Nd (stage 1), 4Ψ + 12Ψ/Nd (2), 16Ψ/Nd (3).
      const double formula = zero == 0   ? 4.0 * psi
                             : zero == 1 ? 2.0 * psi + 2.0 * psi / dp
                             : zero == 2 ? psi + 3.0 * psi / dp
                                         : 4.0 * psi / dp;
      const training::RankMemory& r = m.memory;
      std::printf("| %d | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", dp, zero,
                  Mb(r.param_bytes), Mb(r.grad_bytes), Mb(r.optimizer_state_bytes),
                  Mb(r.activation_peak_bytes),
                  Mb(r.param_bytes + r.grad_bytes + r.optimizer_state_bytes +
                     r.activation_peak_bytes),
                  formula / 1e6,
                  Mb(estimate->parameter_bytes + estimate->gradient_bytes +
                     estimate->optimizer_state_bytes));
    }
  }
}

// Mixed precision: 16-bit values (2 bytes per element), fp32 gradients, and
// the fp32 masters as a third optimizer-state copy, sharded with the moments
// from stage 1 on. Under
// stage 3 the value shards and the gathered layers are 16-bit too, so the
// parameters take half the fp32 stage 3's bytes. Same tolerance as above.
TEST(ZeroMemoryEstimate, SixteenBitValuesForEveryStage) {
  const int64_t psi = 4 * 842496;  // fp32 bytes of the default model's values
  std::printf("| precision | dp | ZeRO | parameters | gradients | optimizer state (masters + "
              "moments) | estimate (params + grads + state) |\n");
  for (const training::Precision precision : {training::BF16, training::FP16}) {
    for (int dp : {2, 4}) {
      for (int zero = 0; zero <= 3; ++zero) {
        SCOPED_TRACE(absl::StrCat("precision=", precision == training::BF16 ? "bf16" : "fp16",
                                  " dp=", dp, " zero_stage=", zero));
        training::TrainConfig config = DefaultModelAt(dp, zero);
        config.set_precision(precision);
        const Measured m = Measure(config);
        const absl::StatusOr<training::MemoryEstimate> estimate =
            training::EstimateRankMemory(config);
        ASSERT_TRUE(estimate.ok()) << estimate.status();
        const double padding = 4.0 * dp * (m.buckets + 2);
        EXPECT_NEAR(m.memory.param_bytes, estimate->parameter_bytes, padding);
        EXPECT_NEAR(m.memory.grad_bytes, estimate->gradient_bytes, padding);
        EXPECT_NEAR(m.memory.optimizer_state_bytes, estimate->optimizer_state_bytes, padding);
        if (zero <= 2) {
          EXPECT_EQ(m.memory.param_bytes, psi / 2);
        } else {
          // The fp32 stage 3's parameter bytes, halved.
          training::TrainConfig fp32 = DefaultModelAt(dp, zero);
          EXPECT_NEAR(m.memory.param_bytes, Measure(fp32).memory.param_bytes / 2.0, padding);
          EXPECT_LT(m.memory.param_bytes, psi / 2);
        }
        EXPECT_NEAR(m.memory.optimizer_state_bytes, zero == 0 ? 3.0 * psi : 3.0 * psi / dp,
                    padding);
        const training::RankMemory& r = m.memory;
        std::printf("| %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n",
                    precision == training::BF16 ? "bf16" : "fp16", dp, zero, Mb(r.param_bytes),
                    Mb(r.grad_bytes), Mb(r.optimizer_state_bytes),
                    Mb(estimate->parameter_bytes + estimate->gradient_bytes +
                       estimate->optimizer_state_bytes));
      }
    }
  }
}

// The same on the harness's 8-layer model with pipelines, tensor and
// sequence parallelism and interleaving: every rank's measured memory
// against the estimate of its own pipeline stage (EstimateStageMemory), so
// the full buffers ZeRO 2-3 keep (the head's embedding copy, the
// sequence-parallel LayerNorms) and the per-chunk layers are checked too.
TEST(ZeroMemoryEstimate, MatchesEveryRankOfPipelinedLayouts) {
  std::vector<LayoutRow> rows;
  for (int zero = 0; zero <= 3; ++zero) {
    for (bool sp : {false, true}) {
      rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 2, .sequence_parallel = sp,
                      .grad_bucket_mb = 0.01, .zero_stage = zero});
    }
    rows.push_back({.pp = 2, .dp = 2, .micro_batches = 4,
                    .schedule = topology::INTERLEAVED_1F1B, .virtual_stages = 2,
                    .grad_bucket_mb = 0.01, .zero_stage = zero});
  }
  for (const LayoutRow& row : rows) {
    SCOPED_TRACE(row.Name());
    const training::TrainConfig config = row.ToConfig(/*steps=*/1);
    struct Rank {
      int stage = 0;
      Measured measured;
    };
    absl::Mutex mu;
    std::vector<Rank> ranks;
    const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
      Tensor inputs, targets;
      training::SyntheticRows(/*seed=*/7, /*step=*/0,
                              r.batch.ReplicaRows(r.grid.CoordinatesOf(r.rank).dp),
                              r.batch.seq_length, config.model().vocab_size(), &inputs, &targets);
      RETURN_IF_ERROR(
          r.runner.TrainStep(0, inputs, targets, r.batch.tokens_per_step()).status());
      absl::MutexLock lock(&mu);
      ranks.push_back({.stage = r.runner.pipeline_stage(),
                       .measured = {.memory = r.runner.MemoryInUse(),
                                    .buckets = static_cast<int64_t>(
                                        r.runner.gradient_reducer().buckets().size())}});
      return absl::OkStatus();
    });
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(static_cast<int>(ranks.size()), row.tp * row.pp * row.dp);
    for (const Rank& rank : ranks) {
      SCOPED_TRACE(absl::StrCat("pipeline stage ", rank.stage));
      const absl::StatusOr<training::MemoryEstimate> estimate =
          training::EstimateStageMemory(config, rank.stage);
      ASSERT_TRUE(estimate.ok()) << estimate.status();
      const training::RankMemory& m = rank.measured.memory;
      const double padding = 4.0 * row.dp * (rank.measured.buckets + 2);
      EXPECT_NEAR(m.param_bytes, estimate->parameter_bytes, padding);
      EXPECT_NEAR(m.grad_bytes, estimate->gradient_bytes, padding);
      EXPECT_NEAR(m.optimizer_state_bytes, estimate->optimizer_state_bytes, padding);
    }
  }
}

}  // namespace
}  // namespace trident::testing
