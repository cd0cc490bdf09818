// Local SGD and gossip (replica_sync.h, gossip.h) on the local backend: the
// gossip mixing matrix, the invariant that a round preserves the replicas'
// mean (up to one fp32 rounding per element, bound stated in gossip.h), the
// local-SGD cadence and exact agreement after an average, and the bytes each
// mode sends, counted by the communicator, against the analytic figures.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/parameter.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "data_parallel/sync_modes/gossip.h"
#include "data_parallel/sync_modes/replica_sync.h"
#include "gtest/gtest.h"

namespace trident::data_parallel {
namespace {

// Rank `rank`'s values: normal numbers whose scale varies over 2^-12 .. 2^6
// by block, so that neighbours' exponents differ.
std::vector<float> ValuesOf(int rank, int64_t count) {
  std::mt19937 gen(77 + 31 * rank);
  std::normal_distribution<float> normal;
  std::vector<float> v(count);
  for (int64_t i = 0; i < count; ++i) {
    v[i] = std::ldexp(normal(gen), static_cast<int>((i / 64 + 3 * rank) % 19) - 12);
  }
  return v;
}

TEST(Gossip, NeighboursFormARing) {
  EXPECT_TRUE(GossipNeighbours(0, 1).empty());
  EXPECT_EQ(GossipNeighbours(0, 2), std::vector<int>({1}));
  EXPECT_EQ(GossipNeighbours(1, 2), std::vector<int>({0}));
  EXPECT_EQ(GossipNeighbours(0, 3), std::vector<int>({2, 1}));
  EXPECT_EQ(GossipNeighbours(4, 5), std::vector<int>({3, 0}));
  EXPECT_EQ(GossipBytesSent(1, 10), 0);
  EXPECT_EQ(GossipBytesSent(2, 10), 40);
  EXPECT_EQ(GossipBytesSent(7, 10), 80);
}

// Every new value is the exact weighted mean of the mixing matrix rounded
// once (within half an ulp, 2^-24 relative), the replicas' mean moves by at
// most 2^-24 max|x'| per element, and each member sent the analytic bytes.
TEST(Gossip, RoundPreservesTheMeanUpToOneRoundingPerElement) {
  constexpr int64_t kCount = 3000;
  for (int n = 1; n <= 8; ++n) {
    SCOPED_TRACE(absl::StrCat("n = ", n));
    std::vector<std::vector<float>> before(n), after(n);
    for (int r = 0; r < n; ++r) before[r] = ValuesOf(r, kCount);
    std::vector<int64_t> bytes(n);
    ASSERT_TRUE(comm::RunLocalRanks(n, [&](int rank, comm::Communicator& world) {
                  std::vector<float> mine = before[rank];
                  std::vector<float> scratch;
                  RETURN_IF_ERROR(GossipRound(world, absl::MakeSpan(mine), scratch));
                  after[rank] = mine;
                  bytes[rank] = world.stats().bytes_of(comm::CommOp::kSend);
                  return absl::OkStatus();
                }).ok());
    for (int r = 0; r < n; ++r) EXPECT_EQ(bytes[r], GossipBytesSent(n, kCount));
    for (int64_t i = 0; i < kCount; ++i) {
      double mean_before = 0, mean_after = 0, max_after = 0;
      for (int r = 0; r < n; ++r) {
        mean_before += before[r][i];
        mean_after += after[r][i];
        max_after = std::max(max_after, std::fabs(static_cast<double>(after[r][i])));
        // The row of the mixing matrix.
        double exact = before[r][i];
        const std::vector<int> peers = GossipNeighbours(r, n);
        for (int p : peers) exact += before[p][i];
        exact /= static_cast<double>(peers.size() + 1);
        ASSERT_LE(std::fabs(after[r][i] - exact), std::ldexp(std::fabs(exact), -24))
            << "rank " << r << " element " << i;
      }
      mean_before /= n;
      mean_after /= n;
      ASSERT_LE(std::fabs(mean_after - mean_before), std::ldexp(max_after, -24))
          << "element " << i;
    }
  }
}

// dp = 2: W = [[1/2, 1/2], [1/2, 1/2]], so one round gives both replicas the
// same bits, the exact mean rounded once.
TEST(Gossip, TwoReplicasEndEqual) {
  constexpr int64_t kCount = 1000;
  std::vector<std::vector<float>> after(2);
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) {
                std::vector<float> mine = ValuesOf(rank, kCount);
                std::vector<float> scratch;
                RETURN_IF_ERROR(GossipRound(world, absl::MakeSpan(mine), scratch));
                after[rank] = mine;
                return absl::OkStatus();
              }).ok());
  const std::vector<float> a = ValuesOf(0, kCount), b = ValuesOf(1, kCount);
  for (int64_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(std::memcmp(&after[0][i], &after[1][i], sizeof(float)), 0) << i;
    ASSERT_EQ(after[0][i], static_cast<float>((static_cast<double>(a[i]) + b[i]) / 2)) << i;
  }
}

// Repeated rounds drive the replicas to consensus: every new value is a convex
// combination, so the spread (max - min over replicas) never grows, and W's
// second largest eigenvalue modulus for n = 5 is (1 + 2 cos(2 pi / 5)) / 3 =
// 0.54, so 12 rounds shrink it by far more than 10x.
TEST(Gossip, RepeatedRoundsContract) {
  constexpr int kRanks = 5;
  constexpr int64_t kCount = 256;
  std::vector<double> spread(12, 0.0);
  std::vector<std::vector<float>> state(kRanks);
  for (int r = 0; r < kRanks; ++r) state[r] = ValuesOf(r, kCount);
  for (int round = 0; round < 12; ++round) {
    ASSERT_TRUE(comm::RunLocalRanks(kRanks, [&](int rank, comm::Communicator& world) {
                  std::vector<float> scratch;
                  return GossipRound(world, absl::MakeSpan(state[rank]), scratch);
                }).ok());
    for (int64_t i = 0; i < kCount; ++i) {
      float lo = state[0][i], hi = state[0][i];
      for (int r = 1; r < kRanks; ++r) {
        lo = std::min(lo, state[r][i]);
        hi = std::max(hi, state[r][i]);
      }
      spread[round] = std::max(spread[round], static_cast<double>(hi - lo));
    }
    if (round > 0) {
      EXPECT_LE(spread[round], spread[round - 1]) << "round " << round;
    }
  }
  EXPECT_LT(spread.back(), 0.1 * spread.front());
}

// Parameters of one replica: two tensors of `rank`'s values.
struct Replica {
  explicit Replica(int rank) {
    const std::vector<float> v = ValuesOf(rank, 300);
    a.name = "a";
    a.value = Tensor::FromVector(std::vector<float>(v.begin(), v.begin() + 200), {10, 20});
    b.name = "b";
    b.value = Tensor::FromVector(std::vector<float>(v.begin() + 200, v.end()), {100});
  }
  std::vector<float> Values() const {
    std::vector<float> out = a.value.ToVector<float>();
    const std::vector<float> tail = b.value.ToVector<float>();
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
  }
  Parameter a, b;
};

// Local SGD with H = 3: steps 1 and 2 leave every replica its own values,
// step 3 gives all of them the same bits, the mean within 4 roundings, and
// only that step sends bytes (2 (n-1)/n 4 P for native and ring); for each
// dp_allreduce algorithm.
TEST(LocalSgd, AveragesEveryHStepsAndReplicasThenAgreeBitForBit) {
  constexpr int kRanks = 3;
  for (comm::AllReduceAlgorithm algorithm :
       {comm::AllReduceAlgorithm::kNative, comm::AllReduceAlgorithm::kRing,
        comm::AllReduceAlgorithm::kTree}) {
    std::vector<std::vector<std::vector<float>>> seen(kRanks);
    std::vector<std::vector<int64_t>> calls(kRanks), bytes(kRanks);
    ASSERT_TRUE(comm::RunLocalRanks(kRanks, [&](int rank, comm::Communicator& world) {
                  Replica replica(rank);
                  ReplicaSync sync({.mode = DpSyncMode::kLocalSgd,
                                    .local_sgd_steps = 3,
                                    .algorithm = algorithm},
                                   {replica.a.value, replica.b.value});
                  EXPECT_FALSE(sync.sums_gradients());
                  for (int step = 0; step < 3; ++step) {
                    world.ResetStats();
                    RETURN_IF_ERROR(sync.AfterStep(world, step));
                    const comm::CommStats& s = world.stats();
                    calls[rank].push_back(s.calls_of(comm::CommOp::kAllReduce) +
                                          s.calls_of(comm::CommOp::kSend));
                    bytes[rank].push_back(comm::RingEquivalentBytesSent(s, kRanks));
                    seen[rank].push_back(replica.Values());
                  }
                  return absl::OkStatus();
                }).ok());
    for (int r = 0; r < kRanks; ++r) {
      const std::vector<float> initial = Replica(r).Values();
      EXPECT_EQ(calls[r][0], 0);
      EXPECT_EQ(calls[r][1], 0);
      EXPECT_GT(calls[r][2], 0);
      // The native all-reduce counted as a ring sends it, and the ring itself:
      // 2 (n-1)/n * 4 P bytes. (The tree sends 4 P to its parent and 4 P per
      // child instead.)
      if (algorithm != comm::AllReduceAlgorithm::kTree) {
        EXPECT_EQ(bytes[r][2], 2 * (kRanks - 1) * 4 * 300 / kRanks) << "rank " << r;
      }
      EXPECT_EQ(seen[r][0], initial);
      EXPECT_EQ(seen[r][1], initial);
      ASSERT_EQ(std::memcmp(seen[r][2].data(), seen[0][2].data(), 300 * sizeof(float)), 0)
          << "rank " << r;
    }
    std::vector<std::vector<float>> initial_values;
    for (int r = 0; r < kRanks; ++r) initial_values.push_back(Replica(r).Values());
    for (int64_t i = 0; i < 300; ++i) {
      double exact = 0, magnitude = 0;
      for (int r = 0; r < kRanks; ++r) {
        exact += initial_values[r][i];
        magnitude += std::fabs(initial_values[r][i]);
      }
      exact /= kRanks;
      magnitude /= kRanks;
      // An fp32 sum of three (two roundings, each within 2^-24 of a partial
      // sum bounded by sum |x_r|) and a division (one more): 3 * 2^-24 of the
      // mean magnitude, 4 stated for slack in the order of the ring's sums.
      ASSERT_LE(std::fabs(seen[0][2][i] - exact), std::ldexp(4 * magnitude, -24)) << i;
    }
  }
}

TEST(ReplicaSync, SyncModeNeverMovesParameters) {
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) {
                Replica replica(rank);
                ReplicaSync sync({}, {replica.a.value, replica.b.value});
                EXPECT_TRUE(sync.sums_gradients());
                for (int step = 0; step < 4; ++step) {
                  EXPECT_FALSE(sync.MixesAfter(step));
                  RETURN_IF_ERROR(sync.AfterStep(world, step));
                }
                EXPECT_EQ(replica.Values(), Replica(rank).Values());
                EXPECT_EQ(world.stats().calls_of(comm::CommOp::kAllReduce), 0);
                return absl::OkStatus();
              }).ok());
}

}  // namespace
}  // namespace trident::data_parallel
