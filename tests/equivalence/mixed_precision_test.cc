// Mixed precision trains the same model as fp32: bf16 and fp16 runs (16-bit
// parameters, activations and tp/pp traffic; fp32 master weights, moments and
// gradients; fp16 with its dynamic loss scaler) track the fp32 loss curve of
// the same layout, serial and tp2 x pp2 x dp2, step by step. And an fp16 run
// started with an absurd loss scale skips, halves, then trains, and never
// writes a non-finite parameter.
//
// The model is the equivalence harness's (tests/common/layout_equivalence.h:
// 8 layers, hidden 32, synthetic tokens), not the default job's: 200 steps of
// tp2 x pp2 x dp2 for three precisions must fit a unit test on 2 cores. The
// README's "Mixed precision" section has the default model's curves.

#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/exec_context.h"
#include "core/ops/reduction.h"
#include "core/parameter.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "training/loss_scaler.h"
#include "training/lr_schedule.h"
#include "training/precision.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"

namespace trident::testing {
namespace {

// Per step |loss - fp32 loss| / fp32 loss, over 200 steps.
constexpr double kTrackingTolerance = 2e-2;
constexpr int kSteps = 200;

struct Layout {
  int tp, pp, dp, micro_batches;
};

class TracksFp32 : public ::testing::TestWithParam<Layout> {};

TEST_P(TracksFp32, Bf16AndFp16FollowTheFp32LossCurve) {
  const Layout l = GetParam();
  LayoutRow row{.tp = l.tp, .pp = l.pp, .dp = l.dp, .micro_batch_size = 8 / l.dp / l.micro_batches,
                .micro_batches = l.micro_batches};
  absl::StatusOr<TrainedRun> fp32 = TrainLayout(row.ToConfig(kSteps));
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  ASSERT_EQ(fp32->losses.size(), kSteps);
  // The run must learn something, or tracking proves little.
  ASSERT_LT(fp32->losses.back(), 0.9 * fp32->losses.front());
  for (training::Precision precision : {training::BF16, training::FP16}) {
    row.precision = precision;
    absl::StatusOr<TrainedRun> run = TrainLayout(row.ToConfig(kSteps));
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->losses.size(), kSteps);
    double worst = 0;
    for (int s = 0; s < kSteps; ++s) {
      const double difference = std::abs(run->losses[s] - fp32->losses[s]) / fp32->losses[s];
      if (!(difference <= worst)) worst = difference;  // NaN becomes the worst
      EXPECT_LT(difference, kTrackingTolerance)
          << training::PrecisionName(precision) << " step " << s + 1 << ": " << run->losses[s]
          << ", fp32 " << fp32->losses[s];
    }
    std::printf("%s: worst relative loss difference to fp32 over %d steps: %.3g "
                "(final loss %.4f, fp32 %.4f)\n",
                row.Name().c_str(), kSteps, worst, run->losses.back(), fp32->losses.back());
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, TracksFp32,
                         ::testing::Values(Layout{1, 1, 1, 4}, Layout{2, 2, 2, 4}),
                         [](const ::testing::TestParamInfo<Layout>& info) {
                           const Layout& l = info.param;
                           return absl::StrCat("tp", l.tp, "_pp", l.pp, "_dp", l.dp);
                         });

// Pipeline traffic: the activations and their gradients cross stages in the
// model's dtype, so one step of pp = 2 sends and receives exactly half the
// bytes in bf16 or fp16 that it does in fp32 (counted by the communicator).
TEST(MixedPrecisionTraffic, PipelineSendsHalveInSixteenBits) {
  const auto pipeline_bytes = [](training::Precision precision) {
    LayoutRow row{.pp = 2, .micro_batch_size = 2, .micro_batches = 4, .precision = precision};
    const training::TrainConfig config = row.ToConfig(/*steps=*/1);
    std::vector<int64_t> sent(2, 0), received(2, 0);
    const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
      const data::RowRange rows = r.batch.ReplicaRows(0);
      Tensor inputs, targets;
      training::SyntheticRows(1, 0, rows, r.batch.seq_length, config.model().vocab_size(),
                              &inputs, &targets);
      r.comms.pp->ResetStats();
      RETURN_IF_ERROR(
          r.runner.TrainStep(0, inputs, targets, r.batch.tokens_per_step()).status());
      sent[r.rank] = r.comms.pp->stats().bytes_of(comm::CommOp::kSend);
      received[r.rank] = r.comms.pp->stats().bytes_of(comm::CommOp::kRecv);
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
    return std::pair{sent[0] + sent[1], received[0] + received[1]};
  };
  const auto [fp32_sent, fp32_received] = pipeline_bytes(training::FP32);
  // 4 micro-batches x 2 x 16 tokens x hidden 32: activations forward, gradients back.
  EXPECT_EQ(fp32_sent, 2 * 4 * (2 * 16 * 32) * 4);
  EXPECT_EQ(fp32_received, fp32_sent);
  for (training::Precision precision : {training::BF16, training::FP16}) {
    const auto [sent, received] = pipeline_bytes(precision);
    EXPECT_EQ(sent * 2, fp32_sent) << training::PrecisionName(precision);
    EXPECT_EQ(received * 2, fp32_received) << training::PrecisionName(precision);
  }
}

// 2^40 overflows fp16 at once (its largest finite value is 65504): the
// scaler must skip and halve (hysteresis 2: every second overflow) until the
// gradients fit, then train; no skipped step may touch a parameter.
TEST(Fp16LossScaler, AHugeInitialScaleRecoversAndNeverWritesANonFiniteParameter) {
  LayoutRow row{.tp = 2, .pp = 2, .micro_batches = 2, .precision = training::FP16};
  training::TrainConfig config = row.ToConfig(/*steps=*/80);
  config.mutable_loss_scale()->set_initial_scale(std::ldexp(1.0, 40));
  config.mutable_loss_scale()->set_window(20);
  std::vector<double> scales, losses, lrs;
  std::vector<bool> skipped;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    const data::RowRange rows = r.batch.ReplicaRows(r.grid.CoordinatesOf(r.rank).dp);
    Tensor inputs, targets;
    const ExecContext ctx = ExecContext::Cpu();
    for (int step = 0; step < config.steps(); ++step) {
      training::SyntheticRows(20261206, step, rows, r.batch.seq_length,
                              config.model().vocab_size(), &inputs, &targets);
      ASSIGN_OR_RETURN(const training::StepResult result,
                       r.runner.TrainStep(step, inputs, targets, r.batch.tokens_per_step()));
      // Every value this rank holds (16-bit) and every master (via the
      // optimizer's checkpoint view) is finite after every step.
      for (const Parameter* p : r.runner.optimizer().params()) {
        if (!std::isfinite(ops::SumOfSquares(ctx, p->value))) {
          return absl::InternalError(absl::StrCat("step ", step + 1, ": parameter ", p->name,
                                                  " is not finite on rank ", r.rank));
        }
      }
      if (r.rank == 0) {
        scales.push_back(result.loss_scale);
        skipped.push_back(result.skipped);
        losses.push_back(result.loss);
        lrs.push_back(result.lr);
      }
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(scales.size(), 80u);
  EXPECT_EQ(scales[0], std::ldexp(1.0, 40));
  EXPECT_TRUE(skipped[0]);
  // Hysteresis 2: the first two overflows leave the scale, then each second.
  EXPECT_EQ(scales[1], std::ldexp(1.0, 40));
  EXPECT_EQ(scales[2], std::ldexp(1.0, 39));
  int first_taken = -1;
  for (int s = 0; s < 80; ++s) {
    if (!skipped[s]) {
      first_taken = s;
      break;
    }
    if (s > 0) {
      EXPECT_LE(scales[s], scales[s - 1]);  // only ever halves while skipping
    }
  }
  ASSERT_GT(first_taken, 2) << "the huge scale never overflowed";
  ASSERT_LT(first_taken, 60) << "the scaler never recovered";
  EXPECT_LE(scales[first_taken], 65504.0 * 64);  // back within a plausible range
  // Skipped steps do not advance the LR schedule: the first update runs with
  // the schedule's first learning rate, and every skipped step reports it too.
  for (int s = 0; s <= first_taken; ++s) {
    EXPECT_EQ(lrs[s], training::LearningRate(0, config.optimizer(), config.steps())) << s;
  }
  int taken = 0;
  for (int s = first_taken; s < 80; ++s) taken += skipped[s] ? 0 : 1;
  EXPECT_GT(taken, (80 - first_taken) * 3 / 4) << "it recovered but keeps skipping";
  // And it trains: the loss after recovery falls.
  EXPECT_LT(losses.back(), losses[first_taken]);
  std::printf("fp16 from 2^40: %d skipped steps, first update at step %d with scale %g, "
              "final scale %g, loss %.4f -> %.4f\n",
              first_taken, first_taken + 1, scales[first_taken], scales.back(),
              losses[first_taken], losses.back());
}

}  // namespace
}  // namespace trident::testing
