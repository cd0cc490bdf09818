// The parameter server (data_parallel/sync_modes/parameter_server.h) under
// mpirun: 3 worker processes and 2 server processes, on the quadratic of
// ps_quadratic_testing.h. With S = 0 every worker's values after every clock
// equal synchronous data parallelism's (run on the 3 workers' group) bit for
// bit (the same rank-ordered fp32 sums and elementwise AdamW steps; the MPI
// all-reduce on 3 ranks is rank ordered, RunnerTraits); with S = 2 and a slow
// worker every applied gradient's staleness is in [0, 2] and all workers end
// on the same parameters.

#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "data_parallel/sync_modes/parameter_server.h"
#include "data_parallel/sync_modes/ps_quadratic_testing.h"
#include "gtest/gtest.h"
#include "tests/comm/mpi/mpi_test_env.h"

namespace trident::data_parallel {
namespace {

constexpr int kWorkers = 3;
constexpr int kServers = 2;

TEST(ParameterServerMpi, StalenessZeroEqualsSyncAndStalenessStaysBounded) {
  comm::Communicator& world = comm::testing::MpiTestWorld();
  ASSERT_EQ(world.size(), kWorkers + kServers) << "run on 5 ranks";
  constexpr int64_t kSteps = 20;
  std::vector<std::vector<float>> sync;
  if (world.rank() < kWorkers) {
    std::vector<int> workers(kWorkers);
    std::iota(workers.begin(), workers.end(), 0);
    absl::StatusOr<std::unique_ptr<comm::Communicator>> dp = world.CreateGroup(workers, "workers");
    ASSERT_TRUE(dp.ok()) << dp.status();
    absl::StatusOr<std::vector<std::vector<float>>> run = testing::SyncRun(**dp, kSteps);
    ASSERT_TRUE(run.ok()) << run.status();
    sync = *std::move(run);
  }
  absl::StatusOr<testing::PsRankResult> exact = testing::RunPsRank(
      world, {.workers = kWorkers, .servers = kServers, .staleness = 0, .steps = kSteps});
  ASSERT_TRUE(exact.ok()) << exact.status();
  if (world.rank() < kWorkers) {
    ASSERT_EQ(exact->trajectory.size(), static_cast<size_t>(kSteps));
    for (int64_t c = 0; c < kSteps; ++c) {
      ASSERT_EQ(std::memcmp(exact->trajectory[c].data(), sync[c].data(),
                            testing::kPsElements * sizeof(float)),
                0)
          << "clock " << c;
    }
  } else {
    for (const PsAppliedGradient& a : exact->applied) EXPECT_EQ(a.staleness(), 0);
  }

  constexpr int kStaleness = 2;
  absl::StatusOr<testing::PsRankResult> stale = testing::RunPsRank(
      world, {.workers = kWorkers, .servers = kServers, .staleness = kStaleness, .steps = 50},
      /*slow_worker=*/kWorkers - 1);
  ASSERT_TRUE(stale.ok()) << stale.status();
  if (world.rank() >= kWorkers) {
    EXPECT_EQ(stale->applied.size(), static_cast<size_t>(kWorkers * 50));
    for (const PsAppliedGradient& a : stale->applied) {
      EXPECT_GE(a.staleness(), 0);
      EXPECT_LE(a.staleness(), kStaleness) << "worker " << a.worker << " clock " << a.clock;
    }
  }
  // Every worker ends on the server's final parameters: compare with worker 0.
  std::vector<float> last(testing::kPsElements, 0.0f);
  if (world.rank() < kWorkers) last = stale->trajectory.back();
  std::vector<float> first = last;
  ASSERT_TRUE(world.Broadcast(comm::MakeBuffer(absl::MakeSpan(first)), 0).ok());
  if (world.rank() < kWorkers) EXPECT_EQ(last, first);
}

}  // namespace
}  // namespace trident::data_parallel
