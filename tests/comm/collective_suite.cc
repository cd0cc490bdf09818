#include "tests/comm/collective_suite.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/comm/host_buffer.h"

namespace trident::comm::suite {

void PrintTo(const SuiteParam& param, std::ostream* os) { *os << param.name; }

std::string SuiteParamName(const ::testing::TestParamInfo<SuiteParam>& info) {
  return info.param.name;
}

void CollectiveSuite::SetUp() {
  runner_ = GetParam().make_runner();
  ASSERT_NE(runner_, nullptr);
}

// A library of TEST_Ps may be linked without an instantiation (e.g. while a
// backend is being written).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CollectiveSuite);

namespace {

using ::testing::HasSubstr;

#define SUITE_ASSERT_OK(expr)                 \
  do {                                        \
    const ::absl::Status suite_status = (expr); \
    ASSERT_TRUE(suite_status.ok()) << suite_status; \
  } while (0)

#define SUITE_EXPECT_CODE(expr, code_value)                   \
  do {                                                        \
    const ::absl::Status suite_status = (expr);               \
    EXPECT_EQ(suite_status.code(), (code_value)) << suite_status; \
  } while (0)

constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16,
                                DType::kInt32, DType::kInt64};
constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};
// Empty, single element, odd.
constexpr int64_t kSmallCounts[] = {0, 1, 1001};
// A little over 3 MiB of fp32.
constexpr int64_t kMultiMegabyteFloats = 3 * 262144 + 17;

int MaxRanks(RankRunner& runner) { return std::min(8, runner.MaxWorldSize()); }

std::string Where(const Communicator& comm, absl::string_view what) {
  return absl::StrCat(comm.backend(), " n=", comm.size(), " rank=", comm.rank(), ": ", what);
}

// Fills `buffer` with every element's rank-`rank` value.
void FillRankValues(HostBuffer& buffer, int rank, int64_t offset = 0) {
  for (int64_t i = 0; i < buffer.count(); ++i) {
    buffer.SetInteger(i, ElementValue(buffer.dtype(), rank, offset + i));
  }
}

// The element `i + offset` of a reduction over ranks [0, n) of ElementValue.
void SetExpectedReduction(HostBuffer& expected, int64_t i, int n, ReduceOp op, int64_t offset) {
  std::vector<int64_t> values(n);
  for (int r = 0; r < n; ++r) values[r] = ElementValue(expected.dtype(), r, offset + i);
  expected.SetReduction(i, values, op);
}

// ---------------------------------------------------------------------------
// Every collective, every dtype, world sizes 1-8, exactly known values.

TEST_P(CollectiveSuite, AllReduceEveryDTypeOpAndWorldSize) {
  for (int n = 1; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      for (DType dtype : kAllDTypes) {
        for (ReduceOp op : kAllOps) {
          for (int64_t count : kSmallCounts) {
            const std::string where = Where(comm, absl::StrCat("all-reduce ", ReduceOpName(op), " ",
                                                               DTypeName(dtype), " x", count));
            HostBuffer data(dtype, count), expected(dtype, count);
            FillRankValues(data, comm.rank());
            for (int64_t i = 0; i < count; ++i) SetExpectedReduction(expected, i, n, op, 0);
            SUITE_ASSERT_OK(comm.AllReduce(data.buffer(), op));
            ExpectSameBits(data, expected, where);
          }
        }
      }
    });
  }
}

TEST_P(CollectiveSuite, AllReduceMultiMegabyte) {
  for (int n : {2, 5, 8}) {
    if (n > MaxRanks(runner())) continue;
    runner().Run(n, [&](Communicator& comm) {
      struct Case {
        DType dtype;
        ReduceOp op;
        int64_t count;
      };
      for (const Case& c : {Case{DType::kFloat32, ReduceOp::kSum, kMultiMegabyteFloats},
                            Case{DType::kFloat32, ReduceOp::kMax, kMultiMegabyteFloats},
                            Case{DType::kBFloat16, ReduceOp::kAvg, 600001}}) {
        const std::string where = Where(comm, absl::StrCat("all-reduce ", ReduceOpName(c.op), " ",
                                                           DTypeName(c.dtype), " x", c.count));
        HostBuffer data(c.dtype, c.count), expected(c.dtype, c.count);
        FillRankValues(data, comm.rank());
        for (int64_t i = 0; i < c.count; ++i) SetExpectedReduction(expected, i, n, c.op, 0);
        SUITE_ASSERT_OK(comm.AllReduce(data.buffer(), c.op));
        ExpectSameBits(data, expected, where);
      }
    });
  }
}

void CheckReduceScatter(Communicator& comm, DType dtype, ReduceOp op, int64_t per_rank) {
  const int n = comm.size();
  const std::string where = Where(comm, absl::StrCat("reduce-scatter ", ReduceOpName(op), " ",
                                                     DTypeName(dtype), " x", per_rank));
  HostBuffer in(dtype, per_rank * n), out(dtype, per_rank), expected(dtype, per_rank);
  FillRankValues(in, comm.rank());
  FillRankValues(out, 999);  // Overwritten entirely.
  for (int64_t i = 0; i < per_rank; ++i) {
    SetExpectedReduction(expected, i, n, op, comm.rank() * per_rank);
  }
  SUITE_ASSERT_OK(comm.ReduceScatter(in.const_buffer(), out.buffer(), op));
  ExpectSameBits(out, expected, where);
}

TEST_P(CollectiveSuite, ReduceScatterEveryDTypeOpAndWorldSize) {
  for (int n = 1; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      for (DType dtype : kAllDTypes) {
        for (ReduceOp op : kAllOps) {
          for (int64_t count : kSmallCounts) CheckReduceScatter(comm, dtype, op, count);
        }
      }
    });
  }
}

TEST_P(CollectiveSuite, ReduceScatterMultiMegabyte) {
  const int n = MaxRanks(runner());
  runner().Run(n, [&](Communicator& comm) {
    CheckReduceScatter(comm, DType::kFloat32, ReduceOp::kSum, kMultiMegabyteFloats / n + 3);
    CheckReduceScatter(comm, DType::kFloat16, ReduceOp::kMin, 2 * kMultiMegabyteFloats / n + 1);
  });
}

void CheckAllGather(Communicator& comm, DType dtype, int64_t per_rank, bool in_place) {
  const int n = comm.size();
  const std::string where = Where(comm, absl::StrCat(in_place ? "in-place " : "", "all-gather ",
                                                     DTypeName(dtype), " x", per_rank));
  HostBuffer out(dtype, per_rank * n), expected(dtype, per_rank * n);
  HostBuffer in(dtype, per_rank);
  FillRankValues(in, comm.rank());
  FillRankValues(out, 999);
  for (int s = 0; s < n; ++s) {
    for (int64_t i = 0; i < per_rank; ++i) {
      expected.SetInteger(s * per_rank + i, ElementValue(dtype, s, i));
    }
  }
  ConstBuffer input = in.const_buffer();
  if (in_place) {
    // Megatron style: this rank's input already sits in its slice of the output.
    std::memcpy(out.element(comm.rank() * per_rank), in.element(0), in.bytes());
    input = ConstBuffer(out.element(comm.rank() * per_rank), per_rank, dtype);
  }
  SUITE_ASSERT_OK(comm.AllGather(input, out.buffer()));
  ExpectSameBits(out, expected, where);
}

TEST_P(CollectiveSuite, AllGatherEveryDTypeAndWorldSize) {
  for (int n = 1; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      for (DType dtype : kAllDTypes) {
        for (int64_t count : kSmallCounts) {
          CheckAllGather(comm, dtype, count, /*in_place=*/false);
          CheckAllGather(comm, dtype, count, /*in_place=*/true);
        }
      }
    });
  }
}

TEST_P(CollectiveSuite, AllGatherMultiMegabyte) {
  const int n = std::min(4, MaxRanks(runner()));
  runner().Run(n, [&](Communicator& comm) {
    CheckAllGather(comm, DType::kFloat32, kMultiMegabyteFloats / n + 5, /*in_place=*/false);
    CheckAllGather(comm, DType::kInt64, kMultiMegabyteFloats / (2 * n) + 1, /*in_place=*/true);
  });
}

void CheckBroadcast(Communicator& comm, DType dtype, int64_t count, int root) {
  const std::string where =
      Where(comm, absl::StrCat("broadcast from ", root, " ", DTypeName(dtype), " x", count));
  HostBuffer data(dtype, count), expected(dtype, count);
  FillRankValues(data, comm.rank());  // Differs between ranks: only the root's survives.
  FillRankValues(expected, root);
  SUITE_ASSERT_OK(comm.Broadcast(data.buffer(), root));
  ExpectSameBits(data, expected, where);
}

TEST_P(CollectiveSuite, BroadcastFromEveryRootEveryDTypeAndWorldSize) {
  for (int n = 1; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      for (int root = 0; root < n; ++root) {
        for (DType dtype : kAllDTypes) {
          for (int64_t count : kSmallCounts) CheckBroadcast(comm, dtype, count, root);
        }
      }
    });
  }
}

TEST_P(CollectiveSuite, BroadcastMultiMegabyte) {
  const int n = MaxRanks(runner());
  runner().Run(n, [&](Communicator& comm) {
    CheckBroadcast(comm, DType::kFloat32, kMultiMegabyteFloats, 0);
    CheckBroadcast(comm, DType::kBFloat16, kMultiMegabyteFloats, n - 1);
  });
}

// Each rank sends `out` to the next rank and receives `in` from the previous
// one (a ring), every dtype, world sizes 2 to MaxRanks; `exchange` moves the
// data and returns the status of its waits.
using RingExchange =
    std::function<absl::Status(Communicator& comm, ConstBuffer out, Buffer in, int next, int prev)>;
void CheckRings(RankRunner& runner, absl::string_view what, const RingExchange& exchange) {
  for (int n = 2; n <= MaxRanks(runner); ++n) {
    runner.Run(n, [&](Communicator& comm) {
      const int next = (comm.rank() + 1) % n;
      const int prev = (comm.rank() + n - 1) % n;
      for (DType dtype : kAllDTypes) {
        std::vector<int64_t> counts(std::begin(kSmallCounts), std::end(kSmallCounts));
        // Several MiB on the smallest and largest rings only (keeps the suite fast).
        if (dtype == DType::kFloat32 && (n == 2 || n == MaxRanks(runner))) {
          counts.push_back(kMultiMegabyteFloats);
        }
        for (int64_t count : counts) {
          const std::string where =
              Where(comm, absl::StrCat(what, " ", DTypeName(dtype), " x", count));
          HostBuffer out(dtype, count), in(dtype, count), expected(dtype, count);
          FillRankValues(out, comm.rank());
          FillRankValues(in, 999);
          FillRankValues(expected, prev);
          SUITE_ASSERT_OK(exchange(comm, out.const_buffer(), in.buffer(), next, prev));
          ExpectSameBits(in, expected, where);
        }
      }
    });
  }
}

// With the async forms, so that no backend needs eager sends.
TEST_P(CollectiveSuite, SendRecvRingEveryDTypeAndWorldSize) {
  CheckRings(runner(), "ring",
             [](Communicator& comm, ConstBuffer out, Buffer in, int next, int prev) {
               std::unique_ptr<CommHandle> recv = comm.RecvAsync(in, prev, /*tag=*/7);
               std::unique_ptr<CommHandle> send = comm.SendAsync(out, next, /*tag=*/7);
               absl::Status status = send->Wait();
               status.Update(recv->Wait());
               return status;
             });
}

// One batch per rank. Even ranks list the send first, odd ranks the receive
// first: with blocking calls, sends first would deadlock a rendezvous backend;
// a batch starts everything before waiting.
TEST_P(CollectiveSuite, BatchSendRecvRingEveryDTypeAndWorldSize) {
  CheckRings(runner(), "batched ring",
             [](Communicator& comm, ConstBuffer out, Buffer in, int next, int prev) {
               std::vector<P2POp> ops = {P2POp::Send(out, next, /*tag=*/7),
                                         P2POp::Recv(in, prev, /*tag=*/7)};
               if (comm.rank() % 2 == 1) std::swap(ops[0], ops[1]);
               return comm.BatchSendRecv(ops);
             });
}

// Partners (0, 1), (2, 3), ... exchange three messages each way in one batch,
// on two tags, listing their receives in another order than the peer's sends:
// tags keep the streams apart, and within a tag messages match in list order.
TEST_P(CollectiveSuite, BatchSendRecvBothWaysOnTwoTags) {
  for (int n = 2; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      const int partner = comm.rank() ^ 1;
      if (partner >= n) {
        SUITE_ASSERT_OK(comm.BatchSendRecv({}));  // The odd one out.
        return;
      }
      const auto value = [](int src, int k) { return static_cast<int32_t>(src * 100 + k); };
      const int64_t count = 1001;
      std::vector<std::vector<int32_t>> out(3), in(3, std::vector<int32_t>(count, -1));
      for (int k = 0; k < 3; ++k) out[k].assign(count, value(comm.rank(), k));
      // Sends: message 0 and 2 on tag 1, message 1 on tag 2. Receives: tag 2
      // first, then tag 1 twice.
      const std::vector<P2POp> ops = {
          P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(in[1])), partner, 2),
          P2POp::Send(MakeConstBuffer<int32_t>(out[0]), partner, 1),
          P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(in[0])), partner, 1),
          P2POp::Send(MakeConstBuffer<int32_t>(out[1]), partner, 2),
          P2POp::Send(MakeConstBuffer<int32_t>(out[2]), partner, 1),
          P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(in[2])), partner, 1)};
      SUITE_ASSERT_OK(comm.BatchSendRecv(ops));
      for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(in[k], std::vector<int32_t>(count, value(partner, k)))
            << Where(comm, absl::StrCat("message ", k, " from ", partner));
      }
    });
  }
}

// Nobody leaves a barrier before the last member entered it: entry and exit
// times (one clock: the ranks run on one machine) are gathered afterwards.
TEST_P(CollectiveSuite, BarrierHoldsEveryoneUntilTheLastArrives) {
  for (int n = 1; n <= MaxRanks(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      if (comm.rank() == n - 1) absl::SleepFor(absl::Milliseconds(20));
      std::vector<int64_t> times(2);
      times[0] = absl::GetCurrentTimeNanos();
      SUITE_ASSERT_OK(comm.Barrier());
      times[1] = absl::GetCurrentTimeNanos();
      std::vector<int64_t> all(2 * n);
      SUITE_ASSERT_OK(comm.AllGather(MakeConstBuffer<int64_t>(times),
                                     MakeBuffer<int64_t>(absl::MakeSpan(all))));
      int64_t last_entry = 0;
      for (int r = 0; r < n; ++r) last_entry = std::max(last_entry, all[2 * r]);
      for (int r = 0; r < n; ++r) {
        EXPECT_GE(all[2 * r + 1], last_entry) << Where(comm, "barrier") << ": rank " << r
                                              << " left before the last entry";
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Every group kind of the grids tp x pp x dp, Megatron rank order tp-dp-pp.

struct Grid {
  int tp, pp, dp;
  int Rank(int t, int p, int d) const { return t + tp * (d + dp * p); }
};

struct GroupSpec {
  std::string name;
  std::vector<int> ranks;
};

// The groups `rank` belongs to, in the order every rank creates them.
std::vector<GroupSpec> GroupsOf(const Grid& g, int rank) {
  const int t = rank % g.tp;
  const int d = (rank / g.tp) % g.dp;
  const int p = rank / (g.tp * g.dp);
  std::vector<GroupSpec> groups;
  GroupSpec tp{absl::StrCat("tp[pp=", p, ",dp=", d, "]"), {}};
  for (int i = 0; i < g.tp; ++i) tp.ranks.push_back(g.Rank(i, p, d));
  GroupSpec dp{absl::StrCat("dp[tp=", t, ",pp=", p, "]"), {}};
  for (int i = 0; i < g.dp; ++i) dp.ranks.push_back(g.Rank(t, p, i));
  GroupSpec pp{absl::StrCat("pp[tp=", t, ",dp=", d, "]"), {}};
  for (int i = 0; i < g.pp; ++i) pp.ranks.push_back(g.Rank(t, i, d));
  GroupSpec mp{absl::StrCat("mp[dp=", d, "]"), {}};
  for (int i = 0; i < g.pp; ++i) {
    for (int j = 0; j < g.tp; ++j) mp.ranks.push_back(g.Rank(j, i, d));
  }
  std::sort(mp.ranks.begin(), mp.ranks.end());
  GroupSpec embedding{absl::StrCat("embedding[tp=", t, ",dp=", d, "]"), {g.Rank(t, 0, d)}};
  if (g.pp > 1) embedding.ranks.push_back(g.Rank(t, g.pp - 1, d));
  groups = {tp, dp, pp, mp};
  // Only the first and last stages belong to an embedding group.
  if (p == 0 || p == g.pp - 1) groups.push_back(embedding);
  return groups;
}

TEST_P(CollectiveSuite, EveryGroupKindOfGrids) {
  if (runner().MaxWorldSize() < 8) GTEST_SKIP() << "needs 8 ranks";
  for (const Grid& grid : {Grid{2, 2, 2}, Grid{1, 4, 2}, Grid{4, 1, 2}, Grid{8, 1, 1}}) {
    runner().Run(8, [&](Communicator& world) {
      const std::string grid_name = absl::StrCat(grid.tp, "x", grid.pp, "x", grid.dp);
      const int me = world.rank();
      for (const GroupSpec& spec : GroupsOf(grid, me)) {
        const std::string where = Where(world, absl::StrCat(grid_name, " ", spec.name));
        absl::StatusOr<std::unique_ptr<Communicator>> made = world.CreateGroup(spec.ranks, spec.name);
        ASSERT_TRUE(made.ok()) << where << ": " << made.status();
        Communicator& group = **made;
        const int size = static_cast<int>(spec.ranks.size());
        const int index = static_cast<int>(std::find(spec.ranks.begin(), spec.ranks.end(), me) -
                                           spec.ranks.begin());
        ASSERT_EQ(group.size(), size) << where;
        EXPECT_EQ(group.rank(), index) << where;
        EXPECT_EQ(group.name(), spec.name) << where;
        EXPECT_EQ(group.backend(), world.backend()) << where;
        std::vector<int> expected_world;
        for (int r : spec.ranks) expected_world.push_back(world.world_ranks()[r]);
        EXPECT_THAT(std::vector<int>(group.world_ranks().begin(), group.world_ranks().end()),
                    ::testing::ElementsAreArray(expected_world))
            << where;

        // All-reduce: the sum over members of (grid rank + 1).
        std::vector<int64_t> sum = {me + 1};
        SUITE_ASSERT_OK(group.AllReduce(MakeBuffer<int64_t>(absl::MakeSpan(sum)), ReduceOp::kSum));
        int64_t expected_sum = 0;
        for (int r : spec.ranks) expected_sum += r + 1;
        EXPECT_EQ(sum[0], expected_sum) << where;

        // All-gather: the member list in group order.
        std::vector<int32_t> mine = {me};
        std::vector<int32_t> gathered(size, -1);
        SUITE_ASSERT_OK(group.AllGather(MakeConstBuffer<int32_t>(mine),
                                        MakeBuffer<int32_t>(absl::MakeSpan(gathered))));
        EXPECT_THAT(gathered, ::testing::ElementsAreArray(spec.ranks)) << where;

        // Broadcast from the last member.
        std::vector<int32_t> value = {me * 10};
        SUITE_ASSERT_OK(group.Broadcast(MakeBuffer<int32_t>(absl::MakeSpan(value)), size - 1));
        EXPECT_EQ(value[0], spec.ranks.back() * 10) << where;

        // Pipeline neighbours: each stage passes its rank to the next one.
        if (spec.name.rfind("pp[", 0) == 0 && size > 1) {
          std::vector<int32_t> from_prev = {-1};
          std::unique_ptr<CommHandle> recv;
          if (index > 0) recv = group.RecvAsync(MakeBuffer<int32_t>(absl::MakeSpan(from_prev)),
                                                index - 1, /*tag=*/1);
          if (index + 1 < size) {
            SUITE_ASSERT_OK(group.Send(MakeConstBuffer<int32_t>(mine), index + 1, /*tag=*/1));
          }
          if (recv != nullptr) {
            SUITE_ASSERT_OK(recv->Wait());
            EXPECT_EQ(from_prev[0], spec.ranks[index - 1]) << where;
          }
        }
        SUITE_ASSERT_OK(group.Barrier());
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Async handles overlapping on several communicators, waited in reverse order.

TEST_P(CollectiveSuite, ManyAsyncHandlesInFlightWaitedInReverse) {
  if (runner().MaxWorldSize() < 8) GTEST_SKIP() << "needs 8 ranks";
  const Grid grid{2, 2, 2};
  runner().Run(8, [&](Communicator& world) {
    const int me = world.rank();
    std::vector<GroupSpec> specs = GroupsOf(grid, me);
    std::vector<std::unique_ptr<Communicator>> groups;
    for (const GroupSpec& spec : specs) {
      absl::StatusOr<std::unique_ptr<Communicator>> made = world.CreateGroup(spec.ranks, spec.name);
      ASSERT_TRUE(made.ok()) << made.status();
      groups.push_back(*std::move(made));
    }
    Communicator& tp = *groups[0];
    Communicator& dp = *groups[1];
    Communicator& pp = *groups[2];

    // Two all-reduces on one buffer of one communicator: max, then sum. Issue
    // order must hold: the other order would give a different answer.
    std::vector<int32_t> ordered = {me};
    // A multi-chunk all-reduce on the world.
    HostBuffer big(DType::kFloat32, 1 << 18), big_expected(DType::kFloat32, 1 << 18);
    FillRankValues(big, me);
    for (int64_t i = 0; i < big.count(); ++i) {
      SetExpectedReduction(big_expected, i, 8, ReduceOp::kSum, 0);
    }
    std::vector<float> tp_avg = {static_cast<float>(me)};
    std::vector<int64_t> dp_sum = {me};
    std::vector<int32_t> from_prev = {-1};
    std::vector<int32_t> mine = {me};
    std::vector<int32_t> tp_gathered(2, -1);
    std::vector<int32_t> scattered_in(8 * 3);
    for (int i = 0; i < 24; ++i) scattered_in[i] = me * 100 + i;
    std::vector<int32_t> scattered_out(3, -1);
    std::vector<int32_t> dp_bcast = {me};

    std::vector<std::unique_ptr<CommHandle>> handles;
    handles.push_back(world.AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(ordered)), ReduceOp::kMax));
    handles.push_back(world.AllReduceAsync(big.buffer(), ReduceOp::kSum));
    handles.push_back(tp.AllReduceAsync(MakeBuffer<float>(absl::MakeSpan(tp_avg)), ReduceOp::kAvg));
    handles.push_back(dp.AllReduceAsync(MakeBuffer<int64_t>(absl::MakeSpan(dp_sum)), ReduceOp::kSum));
    const int stage = pp.rank();
    if (stage > 0) {
      handles.push_back(pp.RecvAsync(MakeBuffer<int32_t>(absl::MakeSpan(from_prev)), stage - 1, 3));
    }
    if (stage + 1 < pp.size()) {
      handles.push_back(pp.SendAsync(MakeConstBuffer<int32_t>(mine), stage + 1, 3));
    }
    handles.push_back(tp.AllGatherAsync(MakeConstBuffer<int32_t>(mine),
                                        MakeBuffer<int32_t>(absl::MakeSpan(tp_gathered))));
    handles.push_back(world.ReduceScatterAsync(MakeConstBuffer<int32_t>(scattered_in),
                                               MakeBuffer<int32_t>(absl::MakeSpan(scattered_out)),
                                               ReduceOp::kSum));
    handles.push_back(dp.BroadcastAsync(MakeBuffer<int32_t>(absl::MakeSpan(dp_bcast)), 1));
    handles.push_back(world.AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(ordered)), ReduceOp::kSum));
    for (auto it = handles.rbegin(); it != handles.rend(); ++it) SUITE_ASSERT_OK((*it)->Wait());

    EXPECT_EQ(ordered[0], 8 * 7) << "max (7) then sum over 8 ranks";
    ExpectSameBits(big, big_expected, Where(world, "async 1 MiB all-reduce"));
    const GroupSpec& tp_spec = specs[0];
    EXPECT_EQ(tp_avg[0], static_cast<float>(tp_spec.ranks[0] + tp_spec.ranks[1]) / 2.0f);
    const GroupSpec& dp_spec = specs[1];
    EXPECT_EQ(dp_sum[0], dp_spec.ranks[0] + dp_spec.ranks[1]);
    if (stage > 0) {
      EXPECT_EQ(from_prev[0], specs[2].ranks[stage - 1]);
    }
    EXPECT_THAT(tp_gathered, ::testing::ElementsAreArray(tp_spec.ranks));
    for (int i = 0; i < 3; ++i) {
      // Sum over r of (r * 100 + me * 3 + i).
      EXPECT_EQ(scattered_out[i], 100 * 28 + 8 * (me * 3 + i)) << i;
    }
    EXPECT_EQ(dp_bcast[0], dp_spec.ranks[1]);
  });
}

// Two groups with the same members are distinct communicators: ops on one never
// match ops on the other, even when the members issue them in opposite orders.
TEST_P(CollectiveSuite, RepeatedGroupsWithTheSameMembersAreDistinct) {
  if (runner().MaxWorldSize() < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [&](Communicator& world) {
    absl::StatusOr<std::unique_ptr<Communicator>> a = world.CreateGroup({0, 1}, "a");
    absl::StatusOr<std::unique_ptr<Communicator>> b = world.CreateGroup({0, 1}, "b");
    ASSERT_TRUE(a.ok() && b.ok());
    std::vector<int32_t> on_a = {1 + world.rank()};
    std::vector<int32_t> on_b = {10 + world.rank()};
    std::unique_ptr<CommHandle> first, second;
    if (world.rank() == 0) {
      first = (*a)->AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(on_a)), ReduceOp::kSum);
      second = (*b)->AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(on_b)), ReduceOp::kSum);
    } else {
      first = (*b)->AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(on_b)), ReduceOp::kSum);
      second = (*a)->AllReduceAsync(MakeBuffer<int32_t>(absl::MakeSpan(on_a)), ReduceOp::kSum);
    }
    SUITE_ASSERT_OK(second->Wait());
    SUITE_ASSERT_OK(first->Wait());
    EXPECT_EQ(on_a[0], 3);
    EXPECT_EQ(on_b[0], 21);
  });
}

// ---------------------------------------------------------------------------
// Point-to-point ordering and matching between many pairs.

// Message k from src to dst: tag k % 3, 1 + tag elements (so a tag mix-up also
// changes the size), each element encoding (src, dst, k).
constexpr int kMessagesPerPair = 24;
int32_t Encode(int src, int dst, int k, int element) {
  return ((src * 16 + dst) * 100 + k) * 10 + element;
}

TEST_P(CollectiveSuite, PointToPointOrderPerTagBetweenManyPairs) {
  const int n = MaxRanks(runner());
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(n, [&](Communicator& comm) {
    const int me = comm.rank();
    // Phase 1: every send first, then receives by peer in reverse order and by
    // tag in reverse order.
    std::vector<std::vector<int32_t>> payloads;
    std::vector<std::unique_ptr<CommHandle>> sends;
    payloads.reserve(n * kMessagesPerPair);
    for (int peer = 0; peer < n; ++peer) {
      if (peer == me) continue;
      for (int k = 0; k < kMessagesPerPair; ++k) {
        const int tag = k % 3;
        std::vector<int32_t>& p = payloads.emplace_back(1 + tag);
        for (int e = 0; e <= tag; ++e) p[e] = Encode(me, peer, k, e);
        sends.push_back(comm.SendAsync(MakeConstBuffer<int32_t>(p), peer, tag));
      }
    }
    for (int peer = n - 1; peer >= 0; --peer) {
      if (peer == me) continue;
      for (int tag = 2; tag >= 0; --tag) {
        for (int k = tag; k < kMessagesPerPair; k += 3) {
          std::vector<int32_t> got(1 + tag, -1);
          SUITE_ASSERT_OK(comm.Recv(MakeBuffer<int32_t>(absl::MakeSpan(got)), peer, tag));
          for (int e = 0; e <= tag; ++e) {
            ASSERT_EQ(got[e], Encode(peer, me, k, e))
                << Where(comm, absl::StrCat("from ", peer, " tag ", tag, " message ", k));
          }
        }
      }
    }
    for (auto& s : sends) SUITE_ASSERT_OK(s->Wait());
    SUITE_ASSERT_OK(comm.Barrier());

    // Phase 2: every receive posted before any send, waited in reverse order.
    std::vector<std::vector<int32_t>> inboxes;
    std::vector<std::pair<int, int>> origin;  // (peer, k) of each receive.
    std::vector<std::unique_ptr<CommHandle>> recvs;
    inboxes.reserve(n * kMessagesPerPair);
    for (int peer = 0; peer < n; ++peer) {
      if (peer == me) continue;
      for (int tag = 0; tag < 3; ++tag) {
        for (int k = tag; k < kMessagesPerPair; k += 3) {
          std::vector<int32_t>& box = inboxes.emplace_back(1 + tag, -1);
          origin.emplace_back(peer, k);
          recvs.push_back(comm.RecvAsync(MakeBuffer<int32_t>(absl::MakeSpan(box)), peer, tag));
        }
      }
    }
    SUITE_ASSERT_OK(comm.Barrier());
    sends.clear();
    for (size_t i = 0; i < payloads.size(); ++i) {
      // Same payloads, same order as phase 1.
      const int per_peer = kMessagesPerPair;
      const int peer_index = static_cast<int>(i) / per_peer;
      const int peer = peer_index < me ? peer_index : peer_index + 1;
      const int k = static_cast<int>(i) % per_peer;
      sends.push_back(comm.SendAsync(MakeConstBuffer<int32_t>(payloads[i]), peer, k % 3));
    }
    for (int i = static_cast<int>(recvs.size()) - 1; i >= 0; --i) {
      SUITE_ASSERT_OK(recvs[i]->Wait());
      const auto [peer, k] = origin[i];
      for (size_t e = 0; e < inboxes[i].size(); ++e) {
        ASSERT_EQ(inboxes[i][e], Encode(peer, me, k, static_cast<int>(e)))
            << Where(comm, absl::StrCat("pre-posted from ", peer, " message ", k));
      }
    }
    for (auto& s : sends) SUITE_ASSERT_OK(s->Wait());
  });
}

TEST_P(CollectiveSuite, AllToAllExchange) {
  const int n = MaxRanks(runner());
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(n, [&](Communicator& comm) {
    const int me = comm.rank();
    for (int64_t count : {int64_t{1001}, int64_t{65537}}) {
      std::vector<std::vector<int32_t>> out(n), in(n);
      std::vector<std::unique_ptr<CommHandle>> handles;
      for (int peer = 0; peer < n; ++peer) {
        if (peer == me) continue;
        out[peer].resize(count);
        in[peer].assign(count, -1);
        for (int64_t i = 0; i < count; ++i) out[peer][i] = static_cast<int32_t>((me * 8 + peer) * 1000003 + i);
        handles.push_back(comm.SendAsync(MakeConstBuffer<int32_t>(out[peer]), peer, 5));
        handles.push_back(comm.RecvAsync(MakeBuffer<int32_t>(absl::MakeSpan(in[peer])), peer, 5));
      }
      for (auto& h : handles) SUITE_ASSERT_OK(h->Wait());
      for (int peer = 0; peer < n; ++peer) {
        if (peer == me) continue;
        for (int64_t i = 0; i < count; ++i) {
          ASSERT_EQ(in[peer][i], static_cast<int32_t>((peer * 8 + me) * 1000003 + i))
              << Where(comm, absl::StrCat("from ", peer, " element ", i));
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------
// Determinism.

// Floats spread over many binades with both signs, so their sum depends on the
// order of additions.
float WildValue(int rank, int64_t i) {
  uint64_t x = static_cast<uint64_t>(rank) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(i);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  const float mantissa = 1.0f + static_cast<float>(x & 0xffff) / 65536.0f;
  const int exponent = static_cast<int>((x >> 16) % 40) - 20;
  const float sign = ((x >> 32) & 1) ? -1.0f : 1.0f;
  return sign * std::ldexp(mantissa, exponent);
}

TEST_P(CollectiveSuite, FloatAllReduceIsBitwiseReproducible) {
  const int n = MaxRanks(runner());
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  const int64_t count = kMultiMegabyteFloats;
  // Serial rank-order sums, and proof that the order matters for these values.
  std::vector<float> serial(count);
  int64_t order_sensitive = 0;
  for (int64_t i = 0; i < count; ++i) {
    float forward = 0.0f, backward = 0.0f;
    forward = WildValue(0, i);
    for (int r = 1; r < n; ++r) forward += WildValue(r, i);
    backward = WildValue(n - 1, i);
    for (int r = n - 2; r >= 0; --r) backward += WildValue(r, i);
    serial[i] = forward;
    if (forward != backward) ++order_sensitive;
  }
  // Thousands of elements whose sum depends on the order (about 10% of them for
  // 3 ranks, more for other counts) make any reordering visible.
  ASSERT_GT(order_sensitive, count / 20) << "the test values must make the order visible";

  constexpr int kRuns = 3;
  // Per rank, the first run's result bits.
  std::vector<std::vector<float>> first(n);
  for (int run = 0; run < kRuns; ++run) {
    runner().Run(n, [&](Communicator& comm) {
      std::vector<float> data(count);
      for (int64_t i = 0; i < count; ++i) data[i] = WildValue(comm.rank(), i);
      SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum));
      // Every rank holds rank 0's bits.
      std::vector<float> root = data;
      SUITE_ASSERT_OK(comm.Broadcast(MakeBuffer<float>(absl::MakeSpan(root)), 0));
      ASSERT_EQ(std::memcmp(root.data(), data.data(), count * sizeof(float)), 0)
          << Where(comm, "ranks disagree on the all-reduce result");
      std::vector<float>& mine = first[comm.rank()];
      if (run == 0) {
        mine = data;
      } else {
        ASSERT_EQ(std::memcmp(mine.data(), data.data(), count * sizeof(float)), 0)
            << Where(comm, absl::StrCat("run ", run, " differs from run 0"));
      }
      if (runner().traits().rank_ordered_reduction) {
        ASSERT_EQ(std::memcmp(serial.data(), data.data(), count * sizeof(float)), 0)
            << Where(comm, "differs from the serial rank-order sum");
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Timeouts.

TEST_P(CollectiveSuite, MissingRankTimesOutNamingIt) {
  if (!runner().traits().timeouts) GTEST_SKIP() << "backend has no timeouts";
  const int n = std::min(3, MaxRanks(runner()));
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(n, [&](Communicator& comm) {
    comm.set_timeout(absl::Milliseconds(200));
    if (comm.rank() == n - 1) return;  // Never arrives.
    std::vector<float> data = {1.0f};
    const absl::Time start = absl::Now();
    const absl::Status status = comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
    const absl::Duration waited = absl::Now() - start;
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    const std::string message(status.message());
    EXPECT_THAT(message, HasSubstr("all-reduce"));
    EXPECT_THAT(message, HasSubstr(DescribeGroup(comm)));
    EXPECT_THAT(message, HasSubstr(absl::StrCat("did not arrive: world rank ",
                                                comm.world_ranks()[n - 1])));
    EXPECT_GE(waited, absl::Milliseconds(150));
    EXPECT_LT(waited, absl::Seconds(10));
    // The communicator is broken now.
    SUITE_EXPECT_CODE(comm.Barrier(), absl::StatusCode::kFailedPrecondition);
  });
}

TEST_P(CollectiveSuite, MissingSenderTimesOutNamingIt) {
  if (!runner().traits().timeouts) GTEST_SKIP() << "backend has no timeouts";
  if (MaxRanks(runner()) < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [&](Communicator& comm) {
    comm.set_timeout(absl::Milliseconds(200));
    if (comm.rank() == 1) return;  // Never sends.
    std::vector<int32_t> data(4);
    const absl::Status status = comm.Recv(MakeBuffer<int32_t>(absl::MakeSpan(data)), 1, 0);
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("recv"));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr(absl::StrCat("did not arrive: world rank ", comm.world_ranks()[1])));
    SUITE_EXPECT_CODE(comm.Send(MakeConstBuffer<int32_t>(data), 1, 0),
                      absl::StatusCode::kFailedPrecondition);
  });
}

// A batch whose ops partly complete times out naming only the peer whose
// message never came.
TEST_P(CollectiveSuite, BatchTimesOutNamingTheMissingPeerOnly) {
  if (!runner().traits().timeouts) GTEST_SKIP() << "backend has no timeouts";
  if (MaxRanks(runner()) < 3) GTEST_SKIP() << "needs 3 ranks";
  runner().Run(3, [&](Communicator& comm) {
    comm.set_timeout(absl::Milliseconds(200));
    if (comm.rank() == 2) return;  // Never sends.
    std::vector<int32_t> out = {comm.rank()}, from_1 = {-1}, from_2 = {-1};
    if (comm.rank() == 1) {
      SUITE_ASSERT_OK(
          comm.BatchSendRecv({P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(from_1)), 0, 0),
                              P2POp::Send(MakeConstBuffer<int32_t>(out), 0, 0)}));
      EXPECT_EQ(from_1[0], 0);
      return;
    }
    const absl::Status status =
        comm.BatchSendRecv({P2POp::Send(MakeConstBuffer<int32_t>(out), 1, 0),
                            P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(from_1)), 1, 0),
                            P2POp::Recv(MakeBuffer<int32_t>(absl::MakeSpan(from_2)), 2, 0)});
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    EXPECT_EQ(status.message(),
              DeadlineExceededError(DescribeGroup(comm), CommOp::kRecv, absl::Milliseconds(200),
                                    {comm.world_ranks()[2]})
                  .message());
    EXPECT_EQ(from_1[0], 1);
    SUITE_EXPECT_CODE(comm.Barrier(), absl::StatusCode::kFailedPrecondition);
  });
}

TEST_P(CollectiveSuite, LateRankWithinTimeoutSucceeds) {
  const int n = std::min(3, MaxRanks(runner()));
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(n, [&](Communicator& comm) {
    comm.set_timeout(absl::Seconds(5));
    if (comm.rank() == n - 1) absl::SleepFor(absl::Milliseconds(50));
    std::vector<int32_t> data = {comm.rank()};
    SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(data)), ReduceOp::kSum));
    EXPECT_EQ(data[0], n * (n - 1) / 2);
  });
}

// ---------------------------------------------------------------------------
// Argument errors.

TEST_P(CollectiveSuite, BadGroupRanksAreInvalidArgument) {
  if (MaxRanks(runner()) < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [&](Communicator& comm) {
    const auto invalid = absl::StatusCode::kInvalidArgument;
    // Members must be distinct group ranks including the caller.
    EXPECT_EQ(comm.CreateGroup({}, "empty").status().code(), invalid);
    EXPECT_EQ(comm.CreateGroup({comm.rank(), 2}, "out of range").status().code(), invalid);
    EXPECT_EQ(comm.CreateGroup({comm.rank(), comm.rank()}, "twice").status().code(), invalid);
    EXPECT_EQ(comm.CreateGroup({1 - comm.rank()}, "without me").status().code(), invalid);
    // None of the above was created: the next collective pairs up normally.
    std::vector<int32_t> sum = {comm.rank() + 1};
    SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(sum)), ReduceOp::kSum));
    EXPECT_EQ(sum[0], 3);
  });
}

// Every backend refuses malformed calls with the same message: the checks live
// in the Communicator base class, in one order (buffers, then how they relate,
// then roots, peers and tags). Each message is written out once, here.
TEST_P(CollectiveSuite, ArgumentErrorsAreWordedAlikeOnEveryBackend) {
  if (MaxRanks(runner()) < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [&](Communicator& comm) {
    const std::string g = DescribeGroup(comm);
    const int me = comm.rank();
    const int other = 1 - me;
    std::vector<float> two(2), five(5);
    std::vector<int32_t> ints(2);
    const Buffer two_out = MakeBuffer<float>(absl::MakeSpan(two));
    const Buffer five_out = MakeBuffer<float>(absl::MakeSpan(five));
    const ConstBuffer two_in = MakeConstBuffer<float>(two);
    const ConstBuffer five_in = MakeConstBuffer<float>(five);
    const Buffer negative{two.data(), -1, DType::kFloat32};
    const Buffer null{nullptr, 3, DType::kFloat32};
    // A batch whose first op is fine and second is not: the send must not
    // start (checked below by what the partner receives on tag 4).
    std::vector<float> stray = {-1.0f, -1.0f};
    const std::vector<P2POp> bad_batch = {P2POp::Send(MakeConstBuffer<float>(stray), other, 4),
                                          P2POp::Recv(two_out, other, -2)};
    comm.ResetStats();
    struct Case {
      absl::Status status;
      std::string expected;
    };
    const Case cases[] = {
        // Negative counts.
        {comm.AllReduce(negative, ReduceOp::kSum),
         "all-reduce on " + g + ": buffer count -1 is negative"},
        {comm.Recv(negative, other, 0), "recv on " + g + ": buffer count -1 is negative"},
        {comm.ReduceScatter(two_in, negative, ReduceOp::kSum),
         "reduce-scatter on " + g + ": output count -1 is negative"},
        // Null data with a positive count.
        {comm.AllReduce(null, ReduceOp::kMax),
         "all-reduce on " + g + ": buffer data is null but count is 3"},
        {comm.Broadcast(null, 0), "broadcast on " + g + ": buffer data is null but count is 3"},
        {comm.Send(null, other, 0), "send on " + g + ": buffer data is null but count is 3"},
        {comm.AllGather(null, five_out),
         "all-gather on " + g + ": input data is null but count is 3"},
        // Dtype mismatch.
        {comm.AllGather(MakeConstBuffer<int32_t>(ints), five_out),
         "all-gather on " + g + ": input dtype int32 differs from output dtype fp32"},
        {comm.ReduceScatter(MakeConstBuffer<int32_t>(ints), two_out, ReduceOp::kSum),
         "reduce-scatter on " + g + ": input dtype int32 differs from output dtype fp32"},
        // Count mismatch.
        {comm.ReduceScatter(five_in, two_out, ReduceOp::kSum),
         "reduce-scatter on " + g +
             ": input count 5 must equal output count 2 times the group size 2 (4)"},
        {comm.AllGather(two_in, five_out),
         "all-gather on " + g +
             ": output count 5 must equal input count 2 times the group size 2 (4)"},
        // Root out of range.
        {comm.Broadcast(two_out, 2),
         "broadcast on " + g + ": root 2 is not a group rank in [0, 2)"},
        {comm.Broadcast(two_out, -1),
         "broadcast on " + g + ": root -1 is not a group rank in [0, 2)"},
        // Peer out of range, peer == self, negative tag.
        {comm.Send(two_in, 2, 0), "send on " + g + ": peer 2 is not a group rank in [0, 2)"},
        {comm.Recv(two_out, -1, 0), "recv on " + g + ": peer -1 is not a group rank in [0, 2)"},
        {comm.Send(two_in, me, 0),
         absl::StrCat("send on ", g, ": peer ", me,
                      " is the calling rank itself; point-to-point needs another member")},
        {comm.Recv(two_out, other, -3), "recv on " + g + ": tag -3 is negative; tags must be >= 0"},
        // The order of the checks: buffer before root, buffer before peer,
        // peer before tag.
        {comm.Broadcast(null, 7), "broadcast on " + g + ": buffer data is null but count is 3"},
        {comm.Send(null, 9, -1), "send on " + g + ": buffer data is null but count is 3"},
        {comm.Recv(two_out, 9, -1), "recv on " + g + ": peer 9 is not a group rank in [0, 2)"},
        // A batch names the failing op's index.
        {comm.BatchSendRecv(bad_batch),
         "recv (op 1 of a batch of 2) on " + g + ": tag -2 is negative; tags must be >= 0"},
    };
    for (const Case& c : cases) {
      EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.status;
      EXPECT_EQ(c.status.message(), c.expected) << Where(comm, "argument error");
    }
    // Nothing above was issued or counted: the next calls pair up normally,
    // and the refused batch's send never reached the partner.
    for (int op = 0; op < kNumCommOps; ++op) {
      EXPECT_EQ(comm.stats().calls[op], 0) << CommOpName(static_cast<CommOp>(op));
    }
    std::vector<float> sent = {static_cast<float>(me), 1.0f}, got = {9.0f, 9.0f};
    SUITE_ASSERT_OK(
        comm.BatchSendRecv({P2POp::Send(MakeConstBuffer<float>(sent), other, 4),
                            P2POp::Recv(MakeBuffer<float>(absl::MakeSpan(got)), other, 4)}));
    EXPECT_EQ(got, (std::vector<float>{static_cast<float>(other), 1.0f}));
    std::vector<int32_t> sum = {me + 1};
    SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(sum)), ReduceOp::kSum));
    EXPECT_EQ(sum[0], 3);
  });
}

TEST_P(CollectiveSuite, MembersDisagreeingOnCountsFailTheCollective) {
  if (!runner().traits().detects_mismatched_members) GTEST_SKIP() << "not detected by backend";
  if (MaxRanks(runner()) < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(2, [&](Communicator& comm) {
    std::vector<float> data(10 + comm.rank(), 1.0f);
    const absl::Status status = comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("all-reduce"));
    std::vector<float> root_differs(3, 1.0f);
    SUITE_EXPECT_CODE(comm.Broadcast(MakeBuffer<float>(absl::MakeSpan(root_differs)), comm.rank()),
                      absl::StatusCode::kInvalidArgument);
    // The group stays usable.
    std::vector<int32_t> sum = {comm.rank() + 1};
    SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<int32_t>(absl::MakeSpan(sum)), ReduceOp::kSum));
    EXPECT_EQ(sum[0], 3);
  });
}

// ---------------------------------------------------------------------------
// Stats.

TEST_P(CollectiveSuite, StatsCountCallsAndPayloadBytes) {
  const int n = std::min(4, MaxRanks(runner()));
  if (n < 2) GTEST_SKIP() << "needs 2 ranks";
  runner().Run(n, [&](Communicator& comm) {
    comm.ResetStats();
    constexpr int kCalls = 3;
    constexpr int64_t kFloats = 1000;
    std::vector<float> data(kFloats, 1.0f);
    for (int k = 0; k < kCalls; ++k) {
      SUITE_ASSERT_OK(comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum));
    }
    std::vector<float> big(kFloats * n, 1.0f), small(kFloats);
    SUITE_ASSERT_OK(comm.ReduceScatter(MakeConstBuffer<float>(big), MakeBuffer<float>(absl::MakeSpan(small)),
                                       ReduceOp::kSum));
    SUITE_ASSERT_OK(comm.AllGather(MakeConstBuffer<float>(small), MakeBuffer<float>(absl::MakeSpan(big))));
    SUITE_ASSERT_OK(comm.Broadcast(MakeBuffer<float>(absl::MakeSpan(small)), 0));
    SUITE_ASSERT_OK(comm.Barrier());
    const int next = (comm.rank() + 1) % n, prev = (comm.rank() + n - 1) % n;
    std::unique_ptr<CommHandle> recv = comm.RecvAsync(MakeBuffer<float>(absl::MakeSpan(small)), prev, 0);
    SUITE_ASSERT_OK(comm.Send(MakeConstBuffer<float>(data), next, 0));
    SUITE_ASSERT_OK(recv->Wait());
    // Each op of a batch counts as one send or receive.
    SUITE_ASSERT_OK(
        comm.BatchSendRecv({P2POp::Recv(MakeBuffer<float>(absl::MakeSpan(small)), prev, 1),
                            P2POp::Send(MakeConstBuffer<float>(data), next, 1)}));
    // A call refused for its arguments is not counted.
    EXPECT_FALSE(comm.Broadcast(MakeBuffer<float>(absl::MakeSpan(small)), n).ok());

    const CommStats& stats = comm.stats();
    EXPECT_EQ(stats.calls_of(CommOp::kAllReduce), kCalls);
    EXPECT_EQ(stats.bytes_of(CommOp::kAllReduce), 4 * kFloats * kCalls);
    EXPECT_EQ(stats.calls_of(CommOp::kReduceScatter), 1);
    EXPECT_EQ(stats.bytes_of(CommOp::kReduceScatter), 4 * kFloats * n);
    EXPECT_EQ(stats.calls_of(CommOp::kAllGather), 1);
    EXPECT_EQ(stats.bytes_of(CommOp::kAllGather), 4 * kFloats * n);
    EXPECT_EQ(stats.calls_of(CommOp::kBroadcast), 1);
    EXPECT_EQ(stats.bytes_of(CommOp::kBroadcast), 4 * kFloats);
    EXPECT_EQ(stats.calls_of(CommOp::kBarrier), 1);
    EXPECT_EQ(stats.bytes_of(CommOp::kBarrier), 0);
    EXPECT_EQ(stats.calls_of(CommOp::kSend), 2);
    EXPECT_EQ(stats.bytes_of(CommOp::kSend), 2 * 4 * kFloats);
    EXPECT_EQ(stats.calls_of(CommOp::kRecv), 2);
    EXPECT_EQ(stats.bytes_of(CommOp::kRecv), 2 * 4 * kFloats);
    comm.ResetStats();
    EXPECT_EQ(comm.stats().calls_of(CommOp::kAllReduce), 0);
    EXPECT_EQ(comm.stats().bytes_of(CommOp::kAllReduce), 0);
  });
}

}  // namespace
}  // namespace trident::comm::suite
