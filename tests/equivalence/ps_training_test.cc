// The parameter server in training (issue 12, dp_sync=ps): the harness's model
// (tests/common/layout_equivalence.h) on the local backend, W workers (a
// tp = pp = 1 grid of dp = W) and N server ranks.
//   - With staleness 0 every worker reads version c at step c, so ps is
//     synchronous data parallelism: the servers add the workers' gradients in
//     worker-rank order (the local all-reduce's order), clip at the global
//     norm they agree on and run the same elementwise AdamW with the
//     trainer's learning rate. Compared bit for bit with the sync run: every
//     step's loss, every parameter after the last step (memcmp) and the
//     validation loss, at dp 2 and 4 with 1 and 2 servers, in fp32 and bf16.
//     The clipping is active (the harness clips at 0.5; the first steps'
//     norms are about 1). With 2 servers the squared norm is added in
//     another order (two windows' partial sums), so the norm may differ from
//     sync's in its last double bit; the clip factor is rounded to fp32, and
//     the parameters still agree bit for bit (checked).
//   - With staleness 2 it trains: 50 steps at dp 4 with 2 servers lower the
//     loss by at least half of sync's drop (first loss minus the mean of the
//     last 5), the bound of dp_sync_training_test.cc.

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "topology/layout.pb.h"
#include "training/deferred_step_reductions.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

namespace trident::testing {
namespace {

training::TrainConfig PsConfig(const LayoutRow& row, int steps, int servers, int staleness) {
  topology::ParallelLayout layout = row.ToLayout();
  layout.set_dp_sync(topology::DpSync::PS);
  layout.set_ps_servers(servers);
  layout.set_ps_staleness(staleness);
  training::TrainConfig config = EquivalenceConfig(layout, steps);
  config.set_precision(row.precision);
  return config;
}

TrainedRun MustTrain(const training::TrainConfig& config, const std::string& name) {
  absl::StatusOr<TrainedRun> run = TrainLayout(config);
  EXPECT_TRUE(run.ok()) << name << ": " << run.status();
  return run.ok() ? *std::move(run) : TrainedRun();
}

// Bitwise equality of two runs' losses, final parameters and validation loss.
void ExpectBitwiseEqual(const TrainedRun& ps, const TrainedRun& sync, const std::string& name) {
  ASSERT_EQ(ps.losses.size(), sync.losses.size()) << name;
  ASSERT_FALSE(sync.losses.empty()) << name;
  for (size_t s = 0; s < sync.losses.size(); ++s) {
    EXPECT_TRUE(std::isfinite(ps.losses[s])) << name << " step " << s + 1;
    EXPECT_EQ(std::memcmp(&ps.losses[s], &sync.losses[s], sizeof(double)), 0)
        << name << " step " << s + 1 << ": loss " << ps.losses[s] << ", sync " << sync.losses[s];
  }
  ASSERT_EQ(ps.params_after_last.size(), sync.params_after_last.size()) << name;
  ASSERT_FALSE(sync.params_after_last.empty()) << name;
  for (const auto& [tensor, want] : sync.params_after_last) {
    const auto it = ps.params_after_last.find(tensor);
    ASSERT_NE(it, ps.params_after_last.end()) << name << ": " << tensor;
    ASSERT_EQ(it->second.size(), want.size()) << name << ": " << tensor;
    EXPECT_EQ(std::memcmp(it->second.data(), want.data(), want.size() * sizeof(float)), 0)
        << name << ": parameter " << tensor << " differs from sync's";
  }
  EXPECT_EQ(std::memcmp(&ps.val_loss, &sync.val_loss, sizeof(double)), 0)
      << name << ": validation loss " << ps.val_loss << ", sync " << sync.val_loss;
}

struct PsCase {
  int dp = 2;
  int servers = 1;
  training::Precision precision = training::FP32;
};

class PsWithoutStalenessIsSync : public ::testing::TestWithParam<PsCase> {};

TEST_P(PsWithoutStalenessIsSync, LossesAndParametersBitForBit) {
  const PsCase c = GetParam();
  const LayoutRow row{.dp = c.dp, .micro_batch_size = 2, .precision = c.precision};
  constexpr int kSteps = 12;
  training::TrainConfig sync_config = row.ToConfig(kSteps);
  sync_config.set_precision(c.precision);
  ASSERT_GT(sync_config.optimizer().grad_clip(), 0) << "the comparison must cover clipping";
  const std::string name = absl::StrCat("dp ", c.dp, ", ", c.servers, " server(s)");
  const TrainedRun sync = MustTrain(sync_config, "sync");
  const TrainedRun ps = MustTrain(PsConfig(row, kSteps, c.servers, /*staleness=*/0), name);
  ExpectBitwiseEqual(ps, sync, name);
  // The run learnt something (a protocol that never applied an update would
  // differ from sync's anyway; this names the failure if both stalled).
  EXPECT_LT(sync.losses.back(), sync.losses.front());
}

INSTANTIATE_TEST_SUITE_P(
    DpAndServers, PsWithoutStalenessIsSync,
    ::testing::Values(PsCase{.dp = 2, .servers = 1}, PsCase{.dp = 2, .servers = 2},
                      PsCase{.dp = 4, .servers = 1}, PsCase{.dp = 4, .servers = 2},
                      PsCase{.dp = 2, .servers = 2, .precision = training::BF16}),
    [](const ::testing::TestParamInfo<PsCase>& info) {
      return absl::StrCat("dp", info.param.dp, "_servers", info.param.servers,
                          info.param.precision == training::BF16 ? "_bf16" : "");
    });

TEST(PsTraining, StalenessTwoLowersTheLossOverFiftyStepsAtDp4) {
  constexpr int kSteps = 50;
  const LayoutRow row{.dp = 4, .micro_batch_size = 2};
  const TrainedRun sync = MustTrain(row.ToConfig(kSteps), "sync");
  const TrainedRun ps = MustTrain(PsConfig(row, kSteps, /*servers=*/2, /*staleness=*/2), "ps S=2");
  ASSERT_EQ(sync.losses.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(ps.losses.size(), static_cast<size_t>(kSteps));
  for (size_t s = 0; s < ps.losses.size(); ++s) {
    EXPECT_TRUE(std::isfinite(ps.losses[s])) << "step " << s + 1;
  }
  const double sync_drop = LossDrop(sync.losses);
  const double ps_drop = LossDrop(ps.losses);
  std::printf("sync drop %.4f, ps (2 servers, S = 2) drop %.4f\n", sync_drop, ps_drop);
  EXPECT_GE(sync_drop, 0.5) << "synchronous data parallelism must learn for the bound to matter";
  EXPECT_GE(ps_drop, 0.5 * sync_drop);  // NaN fails too.
}

// StepRunner::SkipLossShare, what the trainer uses under ps with S > 0 to
// sum the loss later without a barrier: refused outside ps; under ps the
// step's loss is NaN and the replicas' replica_loss_sum, added in replica
// order (SumReplicaLosses, as the trainer's deferred reduction does), is the
// loss the shared step reports, bit for bit.
TEST(PsTraining, SkippedLossShareLeavesTheSumsOfTheSharedLoss) {
  const LayoutRow row{.dp = 2, .micro_batch_size = 2};
  const absl::Status refused = RunRanks(row.ToConfig(1), [](RankRun& r) -> absl::Status {
    const absl::Status status = r.runner.SkipLossShare();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_NE(status.message().find("dp_sync=ps"), absl::string_view::npos) << status;
    return absl::OkStatus();
  });
  ASSERT_TRUE(refused.ok()) << refused;

  const training::TrainConfig config = PsConfig(row, /*steps=*/1, /*servers=*/1, /*staleness=*/0);
  const TrainedRun shared = MustTrain(config, "ps, loss shared");
  ASSERT_EQ(shared.losses.size(), 1u);
  std::vector<int64_t> replica_sums(row.dp);
  double tokens = 0;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    RETURN_IF_ERROR(r.runner.SkipLossShare());
    const int dp = r.grid.CoordinatesOf(r.rank).dp;
    Tensor inputs, targets;
    training::SyntheticRows(static_cast<uint64_t>(config.seed()), 0, r.batch.ReplicaRows(dp),
                            r.batch.seq_length, config.model().vocab_size(), &inputs, &targets);
    tokens = r.batch.tokens_per_step();
    ASSIGN_OR_RETURN(const training::StepResult result,
                     r.runner.TrainStep(0, inputs, targets, tokens));
    EXPECT_TRUE(std::isnan(result.loss)) << "rank " << r.rank << ": " << result.loss;
    replica_sums[dp] = std::bit_cast<int64_t>(result.replica_loss_sum);
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  const double loss = training::SumReplicaLosses(replica_sums) / tokens;
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_EQ(std::memcmp(&loss, &shared.losses[0], sizeof(double)), 0)
      << "deferred " << loss << ", shared " << shared.losses[0];
}

}  // namespace
}  // namespace trident::testing
