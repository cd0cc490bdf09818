#include "bench/tp_bench/timed_communicator.h"

#include <vector>

#include "core/comm/local/local_world.h"
#include "gtest/gtest.h"

namespace trident::bench {
namespace {

TEST(TimedCommunicatorTest, ForwardsCountsAndTimes) {
  absl::Status status = comm::RunLocalRanks(2, [](int rank, comm::Communicator& world) {
    TimedCommunicator timed(&world);
    EXPECT_EQ(timed.rank(), rank);
    EXPECT_EQ(timed.size(), 2);
    std::vector<float> v = {1.0f + rank, 10.0f};
    if (absl::Status s = timed.AllReduce(comm::MakeBuffer(absl::MakeSpan(v)), comm::ReduceOp::kSum);
        !s.ok()) {
      return s;
    }
    EXPECT_EQ(v, (std::vector<float>{3.0f, 20.0f}));
    // Rank 1 arrives 20 ms late: rank 0 waits for it inside the barrier.
    if (rank == 1) absl::SleepFor(absl::Milliseconds(20));
    if (absl::Status s = timed.Barrier(); !s.ok()) return s;
    EXPECT_EQ(timed.stats().calls_of(comm::CommOp::kAllReduce), 1);
    EXPECT_EQ(timed.stats().bytes_of(comm::CommOp::kAllReduce), 8);
    EXPECT_EQ(timed.stats().calls_of(comm::CommOp::kBarrier), 1);
    EXPECT_EQ(world.stats().calls_of(comm::CommOp::kAllReduce), 1);
    if (rank == 0) EXPECT_GE(timed.busy(), absl::Milliseconds(15));
    EXPECT_GT(timed.busy(), absl::ZeroDuration());
    timed.Reset();
    EXPECT_EQ(timed.busy(), absl::ZeroDuration());
    EXPECT_EQ(timed.stats().calls_of(comm::CommOp::kAllReduce), 0);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace trident::bench
