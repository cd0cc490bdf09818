// Behaviour specific to the local backend (the shared collective suite in
// tests/comm/ covers the Communicator contract).

#include "core/comm/local/local_world.h"

#include <time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::comm {
namespace {

using ::testing::HasSubstr;

CommOptions ShortTimeout() {
  CommOptions options;
  options.timeout = absl::Milliseconds(200);
  return options;
}

absl::Duration ThreadCpuTime() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

TEST(LocalWorldTest, CreateRejectsBadArguments) {
  EXPECT_EQ(LocalWorld::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(LocalWorld::Create(-2).status().message()),
              HasSubstr("local world size -2 must be at least 1"));
  CommOptions zero;
  zero.timeout = absl::ZeroDuration();
  EXPECT_THAT(std::string(LocalWorld::Create(2, zero).status().message()),
              HasSubstr("timeout 0 must be positive"));
  absl::StatusOr<std::unique_ptr<LocalWorld>> world = LocalWorld::Create(3);
  ASSERT_TRUE(world.ok());
  EXPECT_EQ((*world)->size(), 3);
  Communicator& comm = (*world)->world(2);
  EXPECT_EQ(comm.rank(), 2);
  EXPECT_EQ(comm.size(), 3);
  EXPECT_EQ(comm.name(), "world");
  EXPECT_EQ(comm.backend(), "local");
  EXPECT_EQ(comm.timeout(), absl::Minutes(5));
}

TEST(RunLocalRanksTest, ReturnsTheFirstErrorNamingItsRank) {
  std::vector<absl::Status> seen(4);
  const absl::Status status = RunLocalRanks(
      4,
      [&](int rank, Communicator& world) -> absl::Status {
        if (rank == 1) return absl::InternalError("rank one gave up");
        std::vector<float> data = {1.0f};
        seen[rank] = world.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
        return seen[rank];
      },
      ShortTimeout());
  // Rank 1 failed first; the others are aborted, naming rank 1 and its error.
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(status.message(), "rank 1: rank one gave up");
  for (int r : {0, 2, 3}) {
    EXPECT_EQ(seen[r].code(), absl::StatusCode::kAborted) << r << ": " << seen[r];
    EXPECT_EQ(seen[r].message(), "aborted: rank 1 failed: rank one gave up");
  }
}

// What a rank blocked in `wait` sees when rank 3 fails meanwhile: the wait ends
// at once (the timeout is a minute), and RunLocalRanks returns rank 3's error.
void ExpectAbortEndsWait(const std::string& what,
                         const std::function<absl::Status(int rank, Communicator& world)>& wait) {
  SCOPED_TRACE(what);
  CommOptions long_timeout;
  long_timeout.timeout = absl::Minutes(1);
  std::vector<absl::Status> seen(4);
  std::vector<absl::Status> later(4);
  const absl::Time start = absl::Now();
  const absl::Status status = RunLocalRanks(
      4,
      [&](int rank, Communicator& world) -> absl::Status {
        if (rank == 3) {
          absl::SleepFor(absl::Milliseconds(100));  // The others are waiting by now.
          return absl::DataLossError("rank_00003.tensors is damaged");
        }
        seen[rank] = wait(rank, world);
        // Every later operation fails at once the same way.
        later[rank] = world.Barrier();
        return seen[rank];
      },
      long_timeout);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_EQ(status.message(), "rank 3: rank_00003.tensors is damaged");
  for (int r : {0, 1, 2}) {
    for (const absl::Status& s : {seen[r], later[r]}) {
      EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << r << ": " << s;
      EXPECT_EQ(s.message(), "aborted: rank 3 failed: rank_00003.tensors is damaged");
    }
  }
}

TEST(RunLocalRanksTest, AFailingRankAbortsBlockedCollectives) {
  ExpectAbortEndsWait("all-reduce", [](int, Communicator& world) {
    std::vector<float> data(1 << 20, 1.0f);  // Large: the chunked path.
    return world.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
  });
  ExpectAbortEndsWait("barrier", [](int, Communicator& world) { return world.Barrier(); });
}

TEST(RunLocalRanksTest, AFailingRankAbortsBlockedReceives) {
  ExpectAbortEndsWait("recv", [](int rank, Communicator& world) {
    std::vector<int32_t> data(4);
    return world.Recv(MakeBuffer<int32_t>(absl::MakeSpan(data)), 3, /*tag=*/rank);
  });
}

TEST(RunLocalRanksTest, AFailingRankAbortsGroupsCreatedFromTheWorld) {
  ExpectAbortEndsWait("group all-reduce", [](int rank, Communicator& world) -> absl::Status {
    // Ranks 0-2 make a group (rank 3 is not in it) and a subgroup of it; rank 0
    // waits in the subgroup, ranks 1 and 2 in the group for a peer that never
    // comes.
    std::vector<int> three = {0, 1, 2};
    absl::StatusOr<std::unique_ptr<Communicator>> group = world.CreateGroup(three, "three");
    if (!group.ok()) return group.status();
    std::vector<int32_t> data = {rank};
    if (rank == 0) {
      std::vector<int> pair = {0, 1};
      absl::StatusOr<std::unique_ptr<Communicator>> sub = (*group)->CreateGroup(pair, "pair");
      if (!sub.ok()) return sub.status();
      return (*sub)->AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(data)), ReduceOp::kSum);
    }
    if (rank == 1) {
      std::vector<int> pair = {0, 1};
      absl::StatusOr<std::unique_ptr<Communicator>> sub = (*group)->CreateGroup(pair, "pair");
      if (!sub.ok()) return sub.status();
      return (*group)->Recv(MakeBuffer<int32_t>(absl::MakeSpan(data)), 2, 0);
    }
    return (*group)->Barrier();
  });
}

TEST(RunLocalRanksTest, OkWhenEveryRankSucceeds) {
  std::atomic<int> ran{0};
  EXPECT_TRUE(RunLocalRanks(5, [&](int, Communicator& world) {
                ++ran;
                return world.Barrier();
              }).ok());
  EXPECT_EQ(ran.load(), 5);
  EXPECT_EQ(RunLocalRanks(0, [](int, Communicator&) { return absl::OkStatus(); }).code(),
            absl::StatusCode::kInvalidArgument);
}

// A timeout breaks the group for every member, including one that comes late;
// groups created before stay usable.
TEST(LocalTimeoutTest, BrokenGroupRefusesLaterOperations) {
  std::vector<absl::Status> late(3);
  const absl::Status status = RunLocalRanks(
      3,
      [&](int rank, Communicator& world) -> absl::Status {
        std::vector<int> pair = {0, 1};
        std::unique_ptr<Communicator> sub;
        if (rank < 2) {
          absl::StatusOr<std::unique_ptr<Communicator>> made = world.CreateGroup(pair, "pair");
          if (!made.ok()) return made.status();
          sub = *std::move(made);
        }
        std::vector<int32_t> data = {rank};
        if (rank == 2) {
          absl::SleepFor(absl::Milliseconds(500));  // Arrives after the others gave up.
          late[2] = world.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(data)), ReduceOp::kSum);
          return absl::OkStatus();
        }
        absl::Status timed_out =
            world.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(data)), ReduceOp::kSum);
        if (timed_out.code() != absl::StatusCode::kDeadlineExceeded) {
          return absl::InternalError(absl::StrCat("expected a timeout, got ", timed_out.ToString()));
        }
        late[rank] = world.Barrier();
        EXPECT_EQ(world.CreateGroup(pair, "again").status().code(),
                  absl::StatusCode::kFailedPrecondition);
        // The pair group is separate state: unaffected.
        return sub->AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(data)), ReduceOp::kSum);
      },
      ShortTimeout());
  EXPECT_TRUE(status.ok()) << status;
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(late[r].code(), absl::StatusCode::kFailedPrecondition) << r << ": " << late[r];
    EXPECT_THAT(std::string(late[r].message()), HasSubstr("broken by an earlier failure"));
    EXPECT_THAT(std::string(late[r].message()), HasSubstr("did not arrive: world rank 2"));
  }
}

// Waiting sleeps: a rank blocked for half a second burns almost no CPU.
TEST(LocalEfficiencyTest, WaitingDoesNotSpin) {
  absl::Duration waiter_cpu;
  absl::Duration recv_cpu;
  ASSERT_TRUE(RunLocalRanks(2, [&](int rank, Communicator& world) -> absl::Status {
                std::vector<float> data = {1.0f};
                if (rank == 1) {
                  absl::SleepFor(absl::Milliseconds(500));
                  absl::Status s =
                      world.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
                  if (!s.ok()) return s;
                  absl::SleepFor(absl::Milliseconds(500));
                  return world.Send(MakeConstBuffer<float>(data), 0, 0);
                }
                absl::Duration start = ThreadCpuTime();
                absl::Status s =
                    world.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
                waiter_cpu = ThreadCpuTime() - start;
                if (!s.ok()) return s;
                start = ThreadCpuTime();
                s = world.Recv(MakeBuffer<float>(absl::MakeSpan(data)), 1, 0);
                recv_cpu = ThreadCpuTime() - start;
                return s;
              }).ok());
  EXPECT_LT(waiter_cpu, absl::Milliseconds(50));
  EXPECT_LT(recv_cpu, absl::Milliseconds(50));
}

// Blocking sends never wait for their receiver, so every rank may send to all
// others before receiving anything (this would deadlock a rendezvous protocol).
TEST(LocalPointToPointTest, BlockingSendsFirstNeverDeadlock) {
  constexpr int kRanks = 6;
  constexpr int64_t kCount = 300000;  // Over 1 MiB per message.
  ASSERT_TRUE(RunLocalRanks(kRanks, [&](int rank, Communicator& world) -> absl::Status {
                std::vector<int32_t> out(kCount);
                for (int peer = 0; peer < kRanks; ++peer) {
                  if (peer == rank) continue;
                  for (int64_t i = 0; i < kCount; ++i) out[i] = rank * 1000 + peer + i;
                  absl::Status s = world.Send(MakeConstBuffer<int32_t>(out), peer, 9);
                  if (!s.ok()) return s;
                }
                std::vector<int32_t> in(kCount);
                for (int peer = kRanks - 1; peer >= 0; --peer) {
                  if (peer == rank) continue;
                  absl::Status s = world.Recv(MakeBuffer<int32_t>(absl::MakeSpan(in)), peer, 9);
                  if (!s.ok()) return s;
                  for (int64_t i = 0; i < kCount; i += 997) {
                    EXPECT_EQ(in[i], peer * 1000 + rank + i);
                  }
                }
                return absl::OkStatus();
              }).ok());
}

TEST(LocalPointToPointTest, MismatchedMessageSizeFailsTheRecv) {
  absl::Status recv_status;
  ASSERT_TRUE(RunLocalRanks(2, [&](int rank, Communicator& world) -> absl::Status {
                if (rank == 0) {
                  std::vector<float> five(5);
                  return world.Send(MakeConstBuffer<float>(five), 1, 4);
                }
                std::vector<float> three(3);
                recv_status = world.Recv(MakeBuffer<float>(absl::MakeSpan(three)), 0, 4);
                return absl::OkStatus();
              }).ok());
  EXPECT_EQ(recv_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(recv_status.message()),
              HasSubstr("from world rank 0 (tag 4): the buffer holds 3 x fp32 but the message "
                        "has 5 x fp32"));
}

// 16-bit floats accumulate in float over all ranks and round once: 256 + 1 + 1
// is 258 in bf16, where pairwise bf16 additions would give 256.
TEST(LocalReductionTest, SixteenBitFloatsRoundOnce) {
  ASSERT_TRUE(RunLocalRanks(3, [&](int rank, Communicator& world) -> absl::Status {
                std::vector<BFloat16> b = {ToBFloat16(rank == 0 ? 256.0f : 1.0f)};
                std::vector<Float16> h = {ToFloat16(rank == 0 ? 2048.0f : 1.0f)};
                absl::Status s =
                    world.AllReduce(MakeBuffer<BFloat16>(absl::MakeSpan(b)), ReduceOp::kSum);
                if (!s.ok()) return s;
                s = world.AllReduce(MakeBuffer<Float16>(absl::MakeSpan(h)), ReduceOp::kSum);
                EXPECT_EQ(ToFloat(b[0]), 258.0f);
                EXPECT_EQ(ToFloat(h[0]), 2050.0f);
                return s;
              }).ok());
}

// Dropping a handle waits for its operation, so the buffer is final afterwards.
TEST(LocalHandleTest, DestroyingAHandleWaits) {
  ASSERT_TRUE(RunLocalRanks(4, [&](int rank, Communicator& world) -> absl::Status {
                std::vector<float> data(1 << 20, static_cast<float>(rank));
                world.AllReduceAsync(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
                for (size_t i = 0; i < data.size(); i += 4099) EXPECT_EQ(data[i], 6.0f);
                return absl::OkStatus();
              }).ok());
}

// Many ranks (more threads than cores many times over) still work and finish fast.
TEST(LocalScaleTest, SixtyFourRanks) {
  const absl::Time start = absl::Now();
  ASSERT_TRUE(RunLocalRanks(64, [&](int rank, Communicator& world) -> absl::Status {
                for (int k = 0; k < 20; ++k) {
                  std::vector<int64_t> data = {rank + k};
                  absl::Status s =
                      world.AllReduce(MakeBuffer<int64_t>(absl::MakeSpan(data)), ReduceOp::kSum);
                  if (!s.ok()) return s;
                  EXPECT_EQ(data[0], 64 * 63 / 2 + 64 * k);
                }
                return world.Barrier();
              }).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace trident::comm
