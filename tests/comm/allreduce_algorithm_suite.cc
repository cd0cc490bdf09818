// The ring and tree all-reduce (core/comm/allreduce_algorithms.h) against the
// backend's native all-reduce, as part of the typed collective suite: every
// backend that instantiates the suite runs these too.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/comm/collective_suite.h"
#include "tests/comm/host_buffer.h"

namespace trident::comm::suite {
namespace {

constexpr AllReduceAlgorithm kPointToPointAlgorithms[] = {AllReduceAlgorithm::kRing,
                                                          AllReduceAlgorithm::kTree};

int MaxRanksOf(RankRunner& runner) { return std::min(8, runner.MaxWorldSize()); }

std::string WhereIs(const Communicator& comm, AllReduceAlgorithm algorithm,
                    absl::string_view what) {
  return absl::StrCat(comm.backend(), " ", AllReduceAlgorithmName(algorithm), " n=", comm.size(),
                      " rank=", comm.rank(), ": ", what);
}

absl::Status RunAlgorithm(Communicator& comm, AllReduceAlgorithm algorithm, Buffer buffer,
                          ReduceOp op) {
  return AllReduceByAlgorithmAsync(comm, buffer, op, algorithm)->Wait();
}

// Exactly known data (every partial sum is representable, in every dtype), so
// the native all-reduce, ring and tree must agree bit for bit whatever order
// they add in. 200003 fp32 elements span several tree segments and leave a
// remainder for the ring's uneven segments.
TEST_P(CollectiveSuite, RingAndTreeEqualNativeOnExactDataEveryDTypeOpAndWorldSize) {
  constexpr DType kDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16, DType::kInt32,
                               DType::kInt64};
  constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};
  for (int n = 1; n <= MaxRanksOf(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      for (AllReduceAlgorithm algorithm : kPointToPointAlgorithms) {
        for (DType dtype : kDTypes) {
          for (ReduceOp op : kOps) {
            for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1001},
                                  dtype == DType::kFloat32 ? int64_t{200003} : int64_t{3}}) {
              const std::string where =
                  WhereIs(comm, algorithm,
                          absl::StrCat(ReduceOpName(op), " ", DTypeName(dtype), " x", count));
              HostBuffer data(dtype, count), native(dtype, count);
              for (int64_t i = 0; i < count; ++i) {
                data.SetInteger(i, ElementValue(dtype, comm.rank(), i));
                native.SetInteger(i, ElementValue(dtype, comm.rank(), i));
              }
              const absl::Status native_status = comm.AllReduce(native.buffer(), op);
              ASSERT_TRUE(native_status.ok()) << native_status;
              const absl::Status status = RunAlgorithm(comm, algorithm, data.buffer(), op);
              ASSERT_TRUE(status.ok()) << where << ": " << status;
              ExpectSameBits(data, native, where);
            }
          }
        }
      }
    });
  }
}

// Deterministic data that every rank can compute for every other rank.
float RandomValue(int rank, int64_t i) {
  uint64_t x =
      (static_cast<uint64_t>(rank) << 40) ^ static_cast<uint64_t>(i) ^ 0x9E3779B97F4A7C15ull;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  // Uniform in [-1, 1) times a magnitude spread over 2^-8 .. 2^8, so that sums
  // cancel and round.
  const double unit = static_cast<double>(x >> 11) * 0x1.0p-53 * 2.0 - 1.0;
  return static_cast<float>(std::ldexp(unit, static_cast<int>((x >> 3) % 17) - 8));
}

// Random fp32 data: ring and tree add in other orders than the native
// all-reduce, so each is held to the worst-case bound of recursive summation
// in any order, |computed - exact| <= gamma_(n-1) * sum_r |x_r| with
// gamma_k = k u / (1 - k u), u = 2^-24 (Higham, Accuracy and Stability of
// Numerical Algorithms, 4.2), against the exact sum (in double, exact for
// these magnitudes), as the native result is. Every member must end with the
// same bits (the all-gather of everyone's result compares them).
TEST_P(CollectiveSuite, RingAndTreeOnRandomFloatsWithinSummationBoundAndIdenticalOnAllRanks) {
  constexpr int64_t kCount = 70001;
  for (int n = 1; n <= MaxRanksOf(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      const double u = std::ldexp(1.0, -24);
      const double gamma = (n - 1) * u / (1 - (n - 1) * u);
      for (AllReduceAlgorithm algorithm :
           {AllReduceAlgorithm::kNative, AllReduceAlgorithm::kRing, AllReduceAlgorithm::kTree}) {
        const std::string where = WhereIs(comm, algorithm, "random fp32");
        std::vector<float> data(kCount);
        for (int64_t i = 0; i < kCount; ++i) data[i] = RandomValue(comm.rank(), i);
        const absl::Status status =
            RunAlgorithm(comm, algorithm, MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum);
        ASSERT_TRUE(status.ok()) << where << ": " << status;
        int64_t outside = 0;
        for (int64_t i = 0; i < kCount; ++i) {
          double exact = 0, magnitude = 0;
          for (int r = 0; r < n; ++r) {
            exact += RandomValue(r, i);
            magnitude += std::fabs(RandomValue(r, i));
          }
          // NaN fails this comparison too.
          if (!(std::fabs(data[i] - exact) <= gamma * magnitude)) ++outside;
        }
        EXPECT_EQ(outside, 0) << where << ": elements outside the summation bound";
        std::vector<float> everyone(kCount * n);
        const absl::Status gathered = comm.AllGather(MakeConstBuffer(absl::MakeConstSpan(data)),
                                                     MakeBuffer(absl::MakeSpan(everyone)));
        ASSERT_TRUE(gathered.ok()) << gathered;
        for (int r = 1; r < n; ++r) {
          EXPECT_EQ(std::memcmp(everyone.data(), everyone.data() + r * kCount,
                                kCount * sizeof(float)),
                    0)
              << where << ": rank " << r << " differs from rank 0";
        }
      }
    });
  }
}

// The communicator counts what each algorithm sends: the ring 2(n-1)/n of the
// buffer per rank (n divides the count here), the tree the buffer once to the
// parent and once to each child.
TEST_P(CollectiveSuite, RingAndTreeSendTheirAnalyticBytes) {
  constexpr int64_t kCount = 840 * 1000;  // Divisible by 1..8; several tree segments.
  for (int n = 1; n <= MaxRanksOf(runner()); ++n) {
    runner().Run(n, [&](Communicator& comm) {
      const int64_t bytes = kCount * static_cast<int64_t>(sizeof(float));
      std::vector<float> data(kCount, 1.0f);
      comm.ResetStats();
      ASSERT_TRUE(RingAllReduce(comm, MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
      EXPECT_EQ(comm.stats().bytes_of(CommOp::kSend), 2 * (n - 1) * bytes / n);
      EXPECT_EQ(comm.stats().bytes_of(CommOp::kRecv), 2 * (n - 1) * bytes / n);
      EXPECT_EQ(comm.stats().calls_of(CommOp::kAllReduce), 0);

      const int r = comm.rank();
      const int has_parent = r > 0 ? 1 : 0;
      const int children = (2 * r + 1 < n ? 1 : 0) + (2 * r + 2 < n ? 1 : 0);
      comm.ResetStats();
      ASSERT_TRUE(TreeAllReduce(comm, MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
      EXPECT_EQ(comm.stats().bytes_of(CommOp::kSend), (has_parent + children) * bytes);
      EXPECT_EQ(comm.stats().bytes_of(CommOp::kRecv), (has_parent + children) * bytes);
      EXPECT_EQ(data[0], static_cast<float>(n) * n) << "one ring then one tree of all-ones";
    });
  }
}

// A malformed buffer is refused by name before any message, so the group's
// next operation still pairs up.
TEST_P(CollectiveSuite, RingAndTreeRefuseMalformedBuffersBeforeSendingAnything) {
  runner().Run(std::min(3, MaxRanksOf(runner())), [&](Communicator& comm) {
    comm.ResetStats();
    const absl::Status negative =
        RingAllReduce(comm, Buffer{nullptr, -1, DType::kFloat32}, ReduceOp::kSum);
    EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(negative.message()),
                ::testing::HasSubstr("ring all-reduce on " + DescribeGroup(comm) +
                                     ": buffer count -1 is negative"));
    const absl::Status null_data =
        TreeAllReduce(comm, Buffer{nullptr, 4, DType::kFloat32}, ReduceOp::kSum);
    EXPECT_THAT(std::string(null_data.message()),
                ::testing::HasSubstr("tree all-reduce on " + DescribeGroup(comm) +
                                     ": buffer count 4 with null data"));
    EXPECT_EQ(comm.stats().calls_of(CommOp::kSend), 0);
    std::vector<float> one = {1.0f};
    ASSERT_TRUE(RingAllReduce(comm, MakeBuffer(absl::MakeSpan(one)), ReduceOp::kSum).ok());
    EXPECT_EQ(one[0], static_cast<float>(comm.size()));
  });
}

TEST(RingEquivalentBytesSent, ConvertsCollectivePayloadsToRingWireBytes) {
  CommStats stats;
  stats.Record(CommOp::kAllReduce, 4000);      // 2 * 3/4 * 4000 = 6000.
  stats.Record(CommOp::kAllGather, 800);       // 3/4 * 800 = 600.
  stats.Record(CommOp::kReduceScatter, 400);   // 3/4 * 400 = 300.
  stats.Record(CommOp::kSend, 123);
  stats.Record(CommOp::kRecv, 999);            // Received, not sent.
  EXPECT_EQ(RingEquivalentBytesSent(stats, 4), 6000 + 600 + 300 + 123);
  EXPECT_EQ(RingEquivalentBytesSent(stats, 1), 123);
}

TEST(AllReduceAlgorithmNames, ParseRoundTripsAndRefusesByName) {
  for (AllReduceAlgorithm a :
       {AllReduceAlgorithm::kNative, AllReduceAlgorithm::kRing, AllReduceAlgorithm::kTree}) {
    const absl::StatusOr<AllReduceAlgorithm> parsed =
        ParseAllReduceAlgorithm(AllReduceAlgorithmName(a));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, a);
  }
  const absl::StatusOr<AllReduceAlgorithm> bad = ParseAllReduceAlgorithm("butterfly");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "all-reduce algorithm \"butterfly\" is not one of native, ring, tree");
}

}  // namespace
}  // namespace trident::comm::suite
