#include "training/deferred_step_reductions.h"

#include <bit>
#include <cstdint>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/comm/local/local_world.h"
#include "gtest/gtest.h"

namespace trident::training {
namespace {

constexpr int kRanks = 3;

// Rank r's loss sum at step t: distinct per rank and step, not exactly
// representable, so the sum's rounding depends on the order of the adds.
double LossOf(int rank, int64_t step) { return 0.1 * (rank + 1) + 1.0 / 3.0 * step; }

double RankOrderSum(int64_t step) {
  double sum = 0;
  for (int r = 0; r < kRanks; ++r) sum += LossOf(r, step);
  return sum;
}

TEST(SumReplicaLossesTest, AddsTheBitsAsDoublesInReplicaOrder) {
  const std::vector<int64_t> bits = {std::bit_cast<int64_t>(0.1), std::bit_cast<int64_t>(0.2),
                                     std::bit_cast<int64_t>(0.3)};
  const double expected = (0.1 + 0.2) + 0.3;
  const double sum = SumReplicaLosses(bits);
  EXPECT_EQ(std::bit_cast<int64_t>(sum), std::bit_cast<int64_t>(expected));
}

// With lag 2, step t's reductions complete after step t + 2, in step order,
// with the replicas' sum (bit for bit, replica order) and the largest signal.
TEST(DeferredStepReductionsTest, CompletesEachStepLagStepsLaterWithTheSumAndTheLargestSignal) {
  constexpr int64_t kSteps = 6;
  constexpr int kLag = 2;
  std::vector<std::vector<int64_t>> completed_after(kRanks * kSteps);
  std::vector<std::vector<DeferredStepReductions::Completed>> results(kRanks);
  const absl::Status status =
      comm::RunLocalRanks(kRanks, [&](int rank, comm::Communicator& world) -> absl::Status {
        DeferredStepReductions reductions(world, world, kLag);
        for (int64_t step = 0; step < kSteps; ++step) {
          reductions.Start(step, LossOf(rank, step), rank == 1 && step == 3 ? 15 : 0);
          absl::StatusOr<std::vector<DeferredStepReductions::Completed>> due =
              reductions.CompleteDue(step);
          if (!due.ok()) return due.status();
          for (const auto& c : *due) {
            completed_after[rank * kSteps + step].push_back(c.step);
            results[rank].push_back(c);
          }
        }
        EXPECT_EQ(reductions.pending(), kLag);
        absl::StatusOr<std::vector<DeferredStepReductions::Completed>> rest =
            reductions.CompleteAll();
        if (!rest.ok()) return rest.status();
        results[rank].insert(results[rank].end(), rest->begin(), rest->end());
        EXPECT_EQ(reductions.pending(), 0);
        return absl::OkStatus();
      });
  ASSERT_TRUE(status.ok()) << status;
  for (int rank = 0; rank < kRanks; ++rank) {
    for (int64_t step = 0; step < kSteps; ++step) {
      const std::vector<int64_t> expected =
          step >= kLag ? std::vector<int64_t>{step - kLag} : std::vector<int64_t>{};
      EXPECT_EQ(completed_after[rank * kSteps + step], expected)
          << "rank " << rank << " after step " << step;
    }
    ASSERT_EQ(results[rank].size(), static_cast<size_t>(kSteps)) << "rank " << rank;
    for (int64_t step = 0; step < kSteps; ++step) {
      const DeferredStepReductions::Completed& c = results[rank][step];
      EXPECT_EQ(c.step, step);
      EXPECT_EQ(std::bit_cast<int64_t>(c.loss_sum), std::bit_cast<int64_t>(RankOrderSum(step)))
          << "rank " << rank << " step " << step << ": " << c.loss_sum << " vs "
          << RankOrderSum(step);
      EXPECT_EQ(c.stop_signal, step == 3 ? 15 : 0) << "rank " << rank << " step " << step;
    }
  }
}

// No barrier: rank 0 starts lag + 1 steps and completes what is due (the
// first step's reductions, which need every rank) only after the others
// start; until then it has waited for nobody. Were Start or CompleteDue to
// wait for the other ranks, rank 0 would never release them and its wait
// would fail with DEADLINE_EXCEEDED.
TEST(DeferredStepReductionsTest, AWorkerRunsLagStepsAheadWithoutWaiting) {
  constexpr int kLag = 2;
  absl::Notification rank0_ran_ahead;
  comm::CommOptions options;
  options.timeout = absl::Seconds(20);
  const absl::Status status = comm::RunLocalRanks(
      kRanks,
      [&](int rank, comm::Communicator& world) -> absl::Status {
        DeferredStepReductions reductions(world, world, kLag);
        if (rank != 0) rank0_ran_ahead.WaitForNotification();
        for (int64_t step = 0; step <= kLag; ++step) {
          reductions.Start(step, LossOf(rank, step), 0);
          if (step == kLag && rank == 0) rank0_ran_ahead.Notify();
          absl::StatusOr<std::vector<DeferredStepReductions::Completed>> due =
              reductions.CompleteDue(step);
          if (!due.ok()) return due.status();
          EXPECT_EQ(due->size(), step == kLag ? 1u : 0u) << "rank " << rank << " step " << step;
        }
        return reductions.CompleteAll().status();
      },
      options);
  ASSERT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace trident::training
