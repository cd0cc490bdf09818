// Bytes each ZeRO stage moves over the data-parallel group in one step,
// counted by the dp communicator (CommStats: a collective's payload is its
// full buffer: the bucket for an all-reduce, the unreduced bucket for a
// reduce-scatter, the gathered output for an all-gather), against the
// analytic figures, with B the padded gradient buckets' bytes (B_pooled of
// them through the ZeRO 2-3 pool, B_full kept in full) and m micro-batches:
//   stage 0: all-reduce B;
//   stage 1: reduce-scatter B, then all-gather of the values B;
//   stage 2: reduce-scatter m B_pooled + B_full (each micro-batch's W), all-gather B;
//   stage 3: reduce-scatter as stage 2; the values all-gathered per
//            micro-batch before each layer's F and again before its B.
// Plus the loss (an all-gather of dp doubles) and, under ZeRO, the norm's
// 4-byte all-reduce. A ring sends (d - 1) / d of a reduce-scatter's or an
// all-gather's payload per rank and 2 (d - 1) / d of an all-reduce's, so for
// one micro-batch stages 1 and 2 put exactly one all-reduce's bytes on the
// wire and stage 3 1.5x (up to the tied embedding's bucket, gathered for the
// embedding and again for the head: the test bounds the difference by it).
// Under bf16/fp16 the value all-gathers move 16-bit values: half the bytes.

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/comm/communicator.h"
#include "core/status_macros.h"
#include "data_parallel/grad_buckets.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "training/batch_geometry.h"
#include "training/precision.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

namespace trident::testing {
namespace {

struct Volume {
  comm::CommStats stats;  // Rank 0's dp communicator, one step.
  int64_t pooled = 0;     // B_pooled.
  int64_t full = 0;       // B_full.
  int64_t tied = 0;       // The largest full bucket (the tied embedding's).
};

Volume Measure(const LayoutRow& row) {
  const training::TrainConfig config = row.ToConfig(/*steps=*/1);
  absl::Mutex mu;
  Volume volume;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    Tensor inputs, targets;
    training::SyntheticRows(/*seed=*/3, /*step=*/0,
                            r.batch.ReplicaRows(r.grid.CoordinatesOf(r.rank).dp),
                            r.batch.seq_length, config.model().vocab_size(), &inputs, &targets);
    r.comms.dp->ResetStats();
    RETURN_IF_ERROR(r.runner.TrainStep(0, inputs, targets, r.batch.tokens_per_step()).status());
    if (r.rank == 0) {
      absl::MutexLock lock(&mu);
      volume.stats = r.comms.dp->stats();
      for (const data_parallel::GradientBucket& b : r.runner.gradient_reducer().buckets()) {
        if (b.pooled) {
          volume.pooled += b.shard.nbytes() * row.dp;
        } else {
          volume.full += b.buffer.nbytes();
          volume.tied = std::max<int64_t>(volume.tied, b.buffer.nbytes());
        }
      }
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return volume;
}

TEST(ZeroCommVolume, EveryStageMovesItsAnalyticBytes) {
  using comm::CommOp;
  for (const int dp : {2, 4}) {
    for (const int m : {1, 2}) {
      for (int zero = 0; zero <= 3; ++zero) {
        SCOPED_TRACE(absl::StrCat("dp=", dp, " micro_batches=", m, " zero_stage=", zero));
        const Volume v = Measure({.dp = dp,
                                  .micro_batches = m,
                                  .grad_bucket_mb = 0.01,
                                  .zero_stage = zero});
        const comm::CommStats& s = v.stats;
        const int64_t buckets = v.pooled + v.full;
        const int64_t loss = 8 * dp;
        const int64_t norm = zero > 0 ? 4 : 0;
        EXPECT_EQ(s.bytes_of(CommOp::kAllReduce), (zero == 0 ? buckets : 0) + norm);
        EXPECT_EQ(s.bytes_of(CommOp::kReduceScatter),
                  zero == 0 ? 0 : zero == 1 ? buckets : m * v.pooled + v.full);
        const int64_t gathers = s.bytes_of(CommOp::kAllGather) - loss;
        if (zero == 0) {
          EXPECT_EQ(gathers, 0);
        } else if (zero <= 2) {
          EXPECT_EQ(gathers, buckets);
        } else {
          EXPECT_NEAR(gathers, 2.0 * m * buckets, m * v.tied);
        }
        // Ring bytes per rank, as a multiple of one plain all-reduce's.
        const double wire = (2.0 * s.bytes_of(CommOp::kAllReduce) +
                             s.bytes_of(CommOp::kReduceScatter) + s.bytes_of(CommOp::kAllGather)) *
                            (dp - 1) / dp;
        const double ratio = wire / (2.0 * (dp - 1) / dp * buckets);
        std::printf("dp %d, m %d, ZeRO %d: %.3fx one all-reduce's wire bytes\n", dp, m, zero,
                    ratio);
        // The loss's and the norm's few bytes (and rounding).
        const double small = (loss + 2.0 * norm) / (2.0 * buckets) + 1e-12;
        if (m == 1 && zero <= 2) {
          EXPECT_NEAR(ratio, 1.0, small);
        } else if (zero == 3) {
          EXPECT_NEAR(ratio, 1.5 * m, small + m * v.tied / (2.0 * buckets));
        }
      }
    }
  }
}

// Mixed precision: gradients stay fp32, so the reduce-scatters move the fp32
// run's bytes exactly; the values are 16-bit, so every value all-gather (ZeRO
// 1-2's post-step one, ZeRO 3's per-layer ones) moves exactly half of them.
TEST(ZeroCommVolume, SixteenBitValuesGatherHalfTheBytes) {
  using comm::CommOp;
  for (const training::Precision precision : {training::BF16, training::FP16}) {
    for (const int m : {1, 2}) {
      for (int zero = 1; zero <= 3; ++zero) {
        SCOPED_TRACE(absl::StrCat("precision=", training::PrecisionName(precision), " micro_batches=", m,
                                  " zero_stage=", zero));
        const LayoutRow row{.dp = 2, .micro_batches = m, .grad_bucket_mb = 0.01,
                            .zero_stage = zero};
        LayoutRow half = row;
        half.precision = precision;
        const Volume fp32 = Measure(row);
        const Volume mixed = Measure(half);
        const int64_t loss = 8 * row.dp;
        EXPECT_EQ(mixed.stats.bytes_of(CommOp::kReduceScatter),
                  fp32.stats.bytes_of(CommOp::kReduceScatter));
        const int64_t fp32_gathers = fp32.stats.bytes_of(CommOp::kAllGather) - loss;
        ASSERT_GT(fp32_gathers, 0);
        EXPECT_EQ(2 * (mixed.stats.bytes_of(CommOp::kAllGather) - loss), fp32_gathers);
        std::printf("%s, m %d, ZeRO %d: value all-gathers %lld bytes (fp32: %lld)\n",
                    training::PrecisionName(precision).data(), m, zero,
                    static_cast<long long>(mixed.stats.bytes_of(CommOp::kAllGather) - loss),
                    static_cast<long long>(fp32_gathers));
      }
    }
  }
}

}  // namespace
}  // namespace trident::testing
