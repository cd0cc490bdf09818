// Direct tests of the MPI backend: every operation and dtype, the splitting of
// large counts, groups, argument errors, timeouts that name the missing ranks.
// Runs under mpirun (see BUILD); written for any world size >= 2, best with 4.

#include "core/comm/mpi/mpi_communicator.h"

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/mpi/launch_env.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/comm/mpi/mpi_test_env.h"

namespace trident::comm {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::MpiTestWorld;

// Each test works on a fresh group of the whole world, so that a test that
// breaks its communicator leaves the next one unaffected.
class MpiCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MpiCommunicator& world = MpiTestWorld();
    std::vector<int> all(world.size());
    std::iota(all.begin(), all.end(), 0);
    absl::StatusOr<std::unique_ptr<Communicator>> group =
        world.CreateGroup(all, ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(group.ok()) << group.status();
    comm_ = *std::move(group);
    rank_ = comm_->rank();
    size_ = comm_->size();
  }

  // Keeps the ranks in step between phases of a test, on the world.
  static void SyncWorld() { ASSERT_TRUE(MpiTestWorld().Barrier().ok()); }

  std::unique_ptr<Communicator> comm_;
  int rank_ = 0;
  int size_ = 1;
};

// Element values as doubles, converted to and from each dtype. Tests pick
// small integers and halves so that every sum below is exact in every dtype.
std::vector<char> MakeElements(DType dtype, const std::vector<double>& values) {
  std::vector<char> bytes(values.size() * DTypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    char* p = bytes.data() + i * DTypeSize(dtype);
    switch (dtype) {
      case DType::kFloat32: {
        const float v = static_cast<float>(values[i]);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kBFloat16: {
        const BFloat16 v = ToBFloat16(static_cast<float>(values[i]));
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kFloat16: {
        const Float16 v = ToFloat16(static_cast<float>(values[i]));
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kInt32: {
        const int32_t v = static_cast<int32_t>(values[i]);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kInt64: {
        const int64_t v = static_cast<int64_t>(values[i]);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
    }
  }
  return bytes;
}

std::vector<double> ReadElements(DType dtype, const std::vector<char>& bytes) {
  const size_t n = bytes.size() / DTypeSize(dtype);
  std::vector<double> values(n);
  for (size_t i = 0; i < n; ++i) {
    const char* p = bytes.data() + i * DTypeSize(dtype);
    switch (dtype) {
      case DType::kFloat32: {
        float v;
        std::memcpy(&v, p, sizeof(v));
        values[i] = v;
        break;
      }
      case DType::kBFloat16: {
        BFloat16 v;
        std::memcpy(&v, p, sizeof(v));
        values[i] = ToFloat(v);
        break;
      }
      case DType::kFloat16: {
        Float16 v;
        std::memcpy(&v, p, sizeof(v));
        values[i] = ToFloat(v);
        break;
      }
      case DType::kInt32: {
        int32_t v;
        std::memcpy(&v, p, sizeof(v));
        values[i] = v;
        break;
      }
      case DType::kInt64: {
        int64_t v;
        std::memcpy(&v, p, sizeof(v));
        values[i] = static_cast<double>(v);
        break;
      }
    }
  }
  return values;
}

Buffer MakeBuf(std::vector<char>& bytes, DType dtype) {
  return Buffer{bytes.data(), static_cast<int64_t>(bytes.size() / DTypeSize(dtype)), dtype};
}

constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16, DType::kInt32,
                                DType::kInt64};
constexpr ReduceOp kAllOps[] = {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};

// Rank r's element i: (i % 5) - 2 + 2r (with a 2^40 offset for int64, to need
// 64 bits). Sums over up to 8 ranks stay within 8 bits of mantissa (exact in
// bf16), and the average is an integer: (i % 5) - 2 + (n - 1).
double Contribution(DType dtype, int rank, int64_t i) {
  const double offset = dtype == DType::kInt64 ? std::ldexp(1.0, 40) : 0.0;
  return offset + static_cast<double>(i % 5) - 2 + 2 * rank;
}

double Expected(DType dtype, ReduceOp op, int n, int64_t i) {
  switch (op) {
    case ReduceOp::kSum: {
      double sum = 0;
      for (int r = 0; r < n; ++r) sum += Contribution(dtype, r, i);
      return sum;
    }
    case ReduceOp::kAvg:
      return Contribution(dtype, 0, i) + (n - 1);
    case ReduceOp::kMax:
      return Contribution(dtype, n - 1, i);
    case ReduceOp::kMin:
      return Contribution(dtype, 0, i);
  }
  return 0;
}

std::vector<double> Contributions(DType dtype, int rank, int64_t begin, int64_t count) {
  std::vector<double> values(count);
  for (int64_t i = 0; i < count; ++i) values[i] = Contribution(dtype, rank, begin + i);
  return values;
}

// Checks every collective for every dtype and count on `comm` (of which this
// process is member `rank`); `label` says which configuration failed.
void CheckAllCollectives(Communicator& comm, absl::Span<const int64_t> counts,
                         const std::string& label) {
  const int n = comm.size();
  const int rank = comm.rank();
  for (DType dtype : kAllDTypes) {
    for (int64_t count : counts) {
      const std::string where = absl::StrCat(label, " dtype=", DTypeName(dtype), " count=", count);
      for (ReduceOp op : kAllOps) {
        std::vector<char> data = MakeElements(dtype, Contributions(dtype, rank, 0, count));
        ASSERT_TRUE(comm.AllReduce(MakeBuf(data, dtype), op).ok()) << where;
        const std::vector<double> got = ReadElements(dtype, data);
        for (int64_t i = 0; i < count; ++i) {
          ASSERT_EQ(got[i], Expected(dtype, op, n, i))
              << where << " all-reduce " << ReduceOpName(op) << " element " << i;
        }

        // Reduce-scatter: member r gets slice r of the reduction of n*count.
        std::vector<char> in = MakeElements(dtype, Contributions(dtype, rank, 0, count * n));
        std::vector<char> out(count * DTypeSize(dtype));
        ASSERT_TRUE(
            comm.ReduceScatter(ConstBuffer(MakeBuf(in, dtype)), MakeBuf(out, dtype), op).ok())
            << where;
        const std::vector<double> slice = ReadElements(dtype, out);
        for (int64_t i = 0; i < count; ++i) {
          ASSERT_EQ(slice[i], Expected(dtype, op, n, rank * count + i))
              << where << " reduce-scatter " << ReduceOpName(op) << " element " << i;
        }
      }

      // All-gather: member r contributes elements [r*count, (r+1)*count).
      std::vector<char> mine = MakeElements(dtype, Contributions(dtype, rank, rank * count, count));
      std::vector<char> all(count * n * DTypeSize(dtype));
      ASSERT_TRUE(comm.AllGather(ConstBuffer(MakeBuf(mine, dtype)), MakeBuf(all, dtype)).ok())
          << where;
      const std::vector<double> gathered = ReadElements(dtype, all);
      for (int64_t i = 0; i < count * n; ++i) {
        ASSERT_EQ(gathered[i],
                  Contribution(dtype, static_cast<int>(i / std::max<int64_t>(count, 1)), i))
            << where << " all-gather element " << i;
      }

      // Broadcast from every root.
      for (int root = 0; root < n; ++root) {
        std::vector<char> data = MakeElements(dtype, Contributions(dtype, rank, 0, count));
        ASSERT_TRUE(comm.Broadcast(MakeBuf(data, dtype), root).ok()) << where;
        const std::vector<double> got = ReadElements(dtype, data);
        for (int64_t i = 0; i < count; ++i) {
          ASSERT_EQ(got[i], Contribution(dtype, root, i))
              << where << " broadcast from " << root << " element " << i;
        }
      }
    }
  }
}

TEST(MpiWorldTest, DescribesTheJob) {
  MpiCommunicator& world = MpiTestWorld();
  int mpi_rank = -1;
  int mpi_size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
  EXPECT_EQ(world.rank(), mpi_rank);
  EXPECT_EQ(world.size(), mpi_size);
  EXPECT_EQ(world.name(), "world");
  EXPECT_EQ(world.backend(), "mpi");
  ASSERT_EQ(world.world_ranks().size(), static_cast<size_t>(mpi_size));
  for (int r = 0; r < mpi_size; ++r) EXPECT_EQ(world.world_ranks()[r], r);
  EXPECT_TRUE(world.tracks_arrivals()) << "one machine: the RMA window should exist";

  absl::StatusOr<LaunchInfo> launch = ReadLaunchInfo();
  ASSERT_TRUE(launch.ok()) << launch.status();
  EXPECT_EQ(launch->launcher, "openmpi");
  EXPECT_EQ(launch->rank, mpi_rank);
  EXPECT_EQ(launch->size, mpi_size);
  EXPECT_EQ(launch->local_rank, mpi_rank) << "mpirun on one machine";
  EXPECT_TRUE(RunningUnderLauncher());
}

TEST(MpiRuntimeTest, AdoptsAnInitialisedMpiAndLeavesItRunning) {
  // mpi_test_main initialised MPI: a second runtime adopts it and must not
  // finalise it when destroyed.
  absl::StatusOr<std::unique_ptr<MpiRuntime>> runtime = MpiRuntime::Initialize();
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  EXPECT_FALSE((*runtime)->owns_mpi());
  EXPECT_GE((*runtime)->thread_level(), MPI_THREAD_SERIALIZED);
  EXPECT_EQ((*runtime)->world_rank(), MpiTestWorld().rank());
  EXPECT_EQ((*runtime)->world_size(), MpiTestWorld().size());
  runtime->reset();
  EXPECT_TRUE(MpiIsActive());
  EXPECT_TRUE(MpiTestWorld().Barrier().ok());

  MpiRuntimeOptions bad;
  bad.heap_block_limit = -1;
  absl::StatusOr<std::unique_ptr<MpiRuntime>> refused =
      MpiRuntime::Initialize(nullptr, nullptr, bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("heap_block_limit = -1"));
}

TEST(MpiWorldTest, RefusesBadSettings) {
  MpiSettings settings;
  settings.max_count_per_call = 0;
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> world =
      MpiCommunicator::CreateWorld(CommOptions(), settings);
  EXPECT_EQ(world.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(world.status().message(), HasSubstr("max_count_per_call = 0"));
}

TEST_F(MpiCommunicatorTest, EveryCollectiveEveryDTypeEveryCount) {
  const int64_t counts[] = {0, 1, 7, 1001};
  CheckAllCollectives(*comm_, counts, "whole world");
}

TEST_F(MpiCommunicatorTest, MultiMegabyteAllReduce) {
  // 3 MiB of fp32: large enough for MPI's rendezvous protocol and pipelined
  // algorithms.
  const int64_t count = 3 * 1024 * 1024 / 4 + 3;
  std::vector<float> data(count);
  for (int64_t i = 0; i < count; ++i) data[i] = static_cast<float>((i % 1000) + rank_);
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
  const float rank_sum = static_cast<float>(size_ * (size_ - 1) / 2);
  for (int64_t i = 0; i < count; ++i) {
    ASSERT_EQ(data[i], static_cast<float>(size_ * (i % 1000)) + rank_sum) << "element " << i;
  }
}

TEST(MpiSplitTest, CountsLargerThanOneCallAreSplit) {
  // A world whose MPI calls carry at most 7 elements: every operation with
  // more must be split, and the per-member paths of reduce-scatter and
  // all-gather (slices over 7 elements) run.
  MpiSettings settings;
  settings.max_count_per_call = 7;
  CommOptions options;
  options.timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> world =
      MpiCommunicator::CreateWorld(options, settings);
  ASSERT_TRUE(world.ok()) << world.status();
  const int64_t counts[] = {0, 5, 7, 8, 23};
  CheckAllCollectives(**world, counts, "max_count_per_call=7");

  // A message of 23 elements arrives as 4 pieces, in order.
  MpiCommunicator& comm = **world;
  const int next = (comm.rank() + 1) % comm.size();
  const int prev = (comm.rank() + comm.size() - 1) % comm.size();
  std::vector<int64_t> out(23);
  std::vector<int64_t> in(23);
  for (int i = 0; i < 23; ++i) out[i] = 1000 * comm.rank() + i;
  auto send = comm.SendAsync(MakeConstBuffer(absl::MakeConstSpan(out)), next, 3);
  ASSERT_TRUE(comm.Recv(MakeBuffer(absl::MakeSpan(in)), prev, 3).ok());
  ASSERT_TRUE(send->Wait().ok());
  for (int i = 0; i < 23; ++i) EXPECT_EQ(in[i], 1000 * prev + i);
}

TEST_F(MpiCommunicatorTest, InPlaceAllGatherAndOverlappingReduceScatter) {
  const int64_t count = 5;
  // All-gather whose input is this rank's own slice of the output.
  std::vector<int32_t> all(count * size_, -1);
  for (int64_t i = 0; i < count; ++i) all[rank_ * count + i] = 100 * rank_ + i;
  ConstBuffer own(all.data() + rank_ * count, count, DType::kInt32);
  ASSERT_TRUE(comm_->AllGather(own, MakeBuffer(absl::MakeSpan(all))).ok());
  for (int r = 0; r < size_; ++r) {
    for (int64_t i = 0; i < count; ++i) EXPECT_EQ(all[r * count + i], 100 * r + i);
  }

  // Reduce-scatter whose output is this rank's slice of the input (ZeRO
  // style): the result replaces the slice.
  std::vector<float> grads(count * size_);
  for (int64_t i = 0; i < count * size_; ++i) grads[i] = static_cast<float>(i + rank_);
  Buffer slice{grads.data() + rank_ * count, count, DType::kFloat32};
  ASSERT_TRUE(
      comm_->ReduceScatter(MakeConstBuffer(absl::MakeConstSpan(grads)), slice, ReduceOp::kSum)
          .ok());
  const float rank_sum = static_cast<float>(size_ * (size_ - 1) / 2);
  for (int64_t i = 0; i < count; ++i) {
    EXPECT_EQ(grads[rank_ * count + i], size_ * static_cast<float>(rank_ * count + i) + rank_sum);
  }

  // Any other overlap is refused.
  ConstBuffer shifted(all.data() + 1, count, DType::kInt32);
  absl::Status refused = comm_->AllGather(shifted, MakeBuffer(absl::MakeSpan(all)));
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("overlaps"));
}

TEST_F(MpiCommunicatorTest, NaNPropagatesThroughFloatMaxAndMin) {
  // Overflow checks reduce NaN flags with max: whichever rank holds the NaN,
  // every rank must see it (MPI_MAX alone would drop it on some orders).
  for (int nan_rank = 0; nan_rank < size_; ++nan_rank) {
    for (ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
      std::vector<float> data = {static_cast<float>(rank_), 1.0f};
      if (rank_ == nan_rank) data[0] = std::numeric_limits<float>::quiet_NaN();
      ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), op).ok());
      EXPECT_TRUE(std::isnan(data[0])) << "NaN on rank " << nan_rank << " " << ReduceOpName(op);
      EXPECT_EQ(data[1], 1.0f);
    }
  }
}

TEST_F(MpiCommunicatorTest, SixteenBitSumsRoundLikeReduceInto) {
  // 1 + 2^-8 per rank is not exact in bf16 (8 mantissa bits); whatever order
  // MPI combines in, every rank must end with the same bits, within one
  // rounding step per combination of the exact sum.
  std::vector<BFloat16> data(64, ToBFloat16(1.0f + 1.0f / 256 * (rank_ + 1)));
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
  double exact = 0;
  for (int r = 0; r < size_; ++r) exact += ToFloat(ToBFloat16(1.0f + 1.0f / 256 * (r + 1)));
  for (const BFloat16& v : data) {
    EXPECT_EQ(v.bits, data[0].bits);
    // Each of the n-1 combinations rounds by at most half an ulp of a value
    // below 2n (ulp 2^-7 * 2n/2 at most); state the bound.
    EXPECT_NEAR(ToFloat(v), exact, (size_ - 1) * size_ * std::ldexp(1.0, -7));
  }
  std::vector<int> bits_of_all(size_);
  const int mine = data[0].bits;
  ASSERT_EQ(MPI_Allgather(&mine, 1, MPI_INT, bits_of_all.data(), 1, MPI_INT, MPI_COMM_WORLD),
            MPI_SUCCESS);
  for (int r = 0; r < size_; ++r) EXPECT_EQ(bits_of_all[r], mine) << "rank " << r;
}

TEST_F(MpiCommunicatorTest, PointToPointKeepsOrderPerTag) {
  // Every rank sends three messages on each of two tags to every other rank;
  // receivers ask for tag 1 first, then tag 0, each in send order.
  std::vector<std::unique_ptr<CommHandle>> sends;
  std::vector<std::vector<int32_t>> payloads;
  payloads.reserve(size_ * 6);
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    for (int tag = 0; tag < 2; ++tag) {
      for (int k = 0; k < 3; ++k) {
        payloads.push_back({rank_, tag, k, peer});
        sends.push_back(
            comm_->SendAsync(MakeConstBuffer(absl::MakeConstSpan(payloads.back())), peer, tag));
      }
    }
  }
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    for (int tag : {1, 0}) {
      for (int k = 0; k < 3; ++k) {
        std::vector<int32_t> got(4, -1);
        ASSERT_TRUE(comm_->Recv(MakeBuffer(absl::MakeSpan(got)), peer, tag).ok());
        EXPECT_EQ(got, (std::vector<int32_t>{peer, tag, k, rank_}));
      }
    }
  }
  for (auto& send : sends) EXPECT_TRUE(send->Wait().ok());
}

TEST_F(MpiCommunicatorTest, ReceivingFewerElementsThanTheBufferIsAnError) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  if (rank_ == 0) {
    std::vector<float> three = {1, 2, 3};
    EXPECT_TRUE(comm_->Send(MakeConstBuffer(absl::MakeConstSpan(three)), 1, 9).ok());
  } else if (rank_ == 1) {
    std::vector<float> four(4);
    absl::Status status = comm_->Recv(MakeBuffer(absl::MakeSpan(four)), 0, 9);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("received 3 elements but the buffer holds 4"));
  }
  // A mismatched message does not break the communicator.
  EXPECT_TRUE(comm_->Barrier().ok());
}

TEST_F(MpiCommunicatorTest, AsyncHandlesOverlapAndDestructionWaits) {
  std::vector<std::vector<int64_t>> buffers(6, std::vector<int64_t>(1000, rank_ + 1));
  std::vector<std::unique_ptr<CommHandle>> handles;
  for (auto& buffer : buffers) {
    handles.push_back(comm_->AllReduceAsync(MakeBuffer(absl::MakeSpan(buffer)), ReduceOp::kSum));
  }
  const int64_t expected = static_cast<int64_t>(size_) * (size_ + 1) / 2;
  // Wait out of order; drop the last two handles without waiting.
  for (int i = 3; i >= 0; --i) ASSERT_TRUE(handles[i]->Wait().ok());
  handles[4].reset();
  handles[5].reset();
  for (const auto& buffer : buffers) {
    for (int64_t v : buffer) ASSERT_EQ(v, expected);
  }
  // Waiting twice returns the same status.
  EXPECT_TRUE(handles[0]->Wait().ok());
}

TEST_F(MpiCommunicatorTest, CollectivesOfOneCommunicatorRunInIssueOrder) {
  // Max then sum on one buffer, both in flight: the sum must see the max.
  std::vector<int32_t> value = {rank_};
  auto max = comm_->AllReduceAsync(MakeBuffer(absl::MakeSpan(value)), ReduceOp::kMax);
  auto sum = comm_->AllReduceAsync(MakeBuffer(absl::MakeSpan(value)), ReduceOp::kSum);
  ASSERT_TRUE(sum->Wait().ok());
  ASSERT_TRUE(max->Wait().ok());
  EXPECT_EQ(value[0], size_ * (size_ - 1));
}

TEST_F(MpiCommunicatorTest, HandlesMayBeWaitedFromOtherThreads) {
  // MPI_THREAD_SERIALIZED: the backend serialises its MPI calls itself.
  std::vector<std::vector<float>> buffers(4, std::vector<float>(50000, 1.0f));
  std::vector<std::unique_ptr<CommHandle>> handles;
  for (auto& buffer : buffers) {
    handles.push_back(comm_->AllReduceAsync(MakeBuffer(absl::MakeSpan(buffer)), ReduceOp::kSum));
  }
  std::vector<absl::Status> statuses(handles.size());
  std::vector<std::thread> waiters;
  for (size_t i = 0; i < handles.size(); ++i) {
    waiters.emplace_back([&, i] { statuses[i] = handles[i]->Wait(); });
  }
  for (std::thread& waiter : waiters) waiter.join();
  for (size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i];
    EXPECT_EQ(buffers[i].front(), static_cast<float>(size_));
    EXPECT_EQ(buffers[i].back(), static_cast<float>(size_));
  }
}

TEST_F(MpiCommunicatorTest, CountsStats) {
  comm_->ResetStats();
  std::vector<float> data(10, 1.0f);
  std::vector<float> gathered(10 * size_);
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kMax).ok());
  ASSERT_TRUE(comm_
                  ->AllGather(MakeConstBuffer(absl::MakeConstSpan(data)),
                              MakeBuffer(absl::MakeSpan(gathered)))
                  .ok());
  ASSERT_TRUE(comm_->Barrier().ok());
  const CommStats& stats = comm_->stats();
  EXPECT_EQ(stats.calls_of(CommOp::kAllReduce), 2);
  EXPECT_EQ(stats.bytes_of(CommOp::kAllReduce), 80);
  EXPECT_EQ(stats.calls_of(CommOp::kAllGather), 1);
  EXPECT_EQ(stats.bytes_of(CommOp::kAllGather), 40 * size_);
  EXPECT_EQ(stats.calls_of(CommOp::kBarrier), 1);
  EXPECT_EQ(stats.calls_of(CommOp::kSend), 0);
}

TEST_F(MpiCommunicatorTest, GroupsFollowTheGivenRankOrder) {
  if (size_ < 3) GTEST_SKIP() << "needs three ranks";
  // Pairs {0,1}, {2,3}, ... (a lone last rank forms its own group), listed in
  // reverse so that group rank 0 is the higher world rank.
  const int first = rank_ - rank_ % 2;
  std::vector<int> pair;
  if (first + 1 < size_) {
    pair = {first + 1, first};
  } else {
    pair = {first};
  }
  absl::StatusOr<std::unique_ptr<Communicator>> group =
      comm_->CreateGroup(pair, absl::StrCat("pair", first / 2));
  ASSERT_TRUE(group.ok()) << group.status();
  Communicator& g = **group;
  EXPECT_EQ(g.size(), static_cast<int>(pair.size()));
  EXPECT_EQ(g.name(), absl::StrCat("pair", first / 2));
  EXPECT_EQ(g.world_ranks()[g.rank()], MpiTestWorld().rank());
  EXPECT_EQ(g.rank(), pair.size() == 1 ? 0 : (rank_ == first ? 1 : 0));
  std::vector<int32_t> value = {rank_};
  ASSERT_TRUE(g.AllReduce(MakeBuffer(absl::MakeSpan(value)), ReduceOp::kSum).ok());
  const int32_t expected = pair.size() == 1 ? first : 2 * first + 1;
  EXPECT_EQ(value[0], expected);

  // An odd group made of ranks {0, 1, 2} and, inside it, a group of {2, 0}.
  if (rank_ < 3) {
    absl::StatusOr<std::unique_ptr<Communicator>> trio = comm_->CreateGroup({0, 1, 2}, "trio");
    ASSERT_TRUE(trio.ok()) << trio.status();
    CheckAllCollectives(**trio, std::vector<int64_t>{3}, "trio");
    if (rank_ != 1) {
      absl::StatusOr<std::unique_ptr<Communicator>> duo = (*trio)->CreateGroup({2, 0}, "duo");
      ASSERT_TRUE(duo.ok()) << duo.status();
      EXPECT_EQ((*duo)->rank(), rank_ == 2 ? 0 : 1);
      EXPECT_THAT(std::vector<int>((*duo)->world_ranks().begin(), (*duo)->world_ranks().end()),
                  ::testing::ElementsAre(2, 0));
      std::vector<int64_t> v = {rank_ + 10};
      ASSERT_TRUE((*duo)->Broadcast(MakeBuffer(absl::MakeSpan(v)), 0).ok());
      EXPECT_EQ(v[0], 12);
    }
  }
}

TEST_F(MpiCommunicatorTest, MembersDisagreeingOnTheGroupAreTold) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  // Everyone passes the same members but rank 0 a different name.
  std::vector<int> all(size_);
  std::iota(all.begin(), all.end(), 0);
  absl::StatusOr<std::unique_ptr<Communicator>> group =
      comm_->CreateGroup(all, rank_ == 0 ? "odd-one" : "agreed");
  ASSERT_EQ(group.status().code(), absl::StatusCode::kInvalidArgument) << group.status();
  EXPECT_THAT(group.status().message(), HasSubstr("different rank list or name"));
}

TEST_F(MpiCommunicatorTest, ArgumentErrorsAreInvalidArgumentAndLeaveTheGroupUsable) {
  std::vector<float> in(3 * size_ + 1);
  std::vector<float> out(3);
  absl::Status status = comm_->ReduceScatter(MakeConstBuffer(absl::MakeConstSpan(in)),
                                             MakeBuffer(absl::MakeSpan(out)), ReduceOp::kSum);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("reduce-scatter"));

  status = comm_->Broadcast(MakeBuffer(absl::MakeSpan(out)), size_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("root ", size_)));

  status = comm_->Send(MakeConstBuffer(absl::MakeConstSpan(out)), rank_, 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  // Tags above MPI_TAG_UB are refused (Open MPI's ob1 allows all of int, then
  // there is nothing to refuse).
  int* tag_ub = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
  if (size_ > 1 && flag && *tag_ub < std::numeric_limits<int>::max()) {
    status =
        comm_->Send(MakeConstBuffer(absl::MakeConstSpan(out)), (rank_ + 1) % size_, *tag_ub + 1);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("MPI_TAG_UB"));
  }

  status = comm_->AllReduce(Buffer{nullptr, 4, DType::kFloat32}, ReduceOp::kSum);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  // None of these reached MPI: the group still works and counted nothing.
  EXPECT_EQ(comm_->stats().calls_of(CommOp::kAllReduce), 0);
  std::vector<int32_t> one = {1};
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(one)), ReduceOp::kSum).ok());
  EXPECT_EQ(one[0], size_);
}

TEST_F(MpiCommunicatorTest, TimeoutNamesTheRankThatSkippedAndBreaksTheGroup) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  comm_->set_timeout(absl::Milliseconds(500));
  const int skipper = size_ - 1;
  std::vector<float> data(16, 1.0f);
  // Operation #1 runs everywhere; the last rank skips #2.
  ASSERT_TRUE(comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum).ok());
  if (rank_ != skipper) {
    const absl::Time start = absl::Now();
    absl::Status status = comm_->AllReduce(MakeBuffer(absl::MakeSpan(data)), ReduceOp::kSum);
    const absl::Duration waited = absl::Now() - start;
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    if (rank_ == 0) std::printf("rank 0 got: %s\n", status.ToString().c_str());
    EXPECT_GE(waited, absl::Milliseconds(500));
    EXPECT_LT(waited, absl::Seconds(5));
    const std::string group_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("all-reduce on ", group_name)));
    EXPECT_THAT(status.message(), HasSubstr("timed out after 500ms"));
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("did not arrive: world rank ", skipper)));
    EXPECT_THAT(status.message(),
                HasSubstr(absl::StrCat("world rank ", skipper, " last entered operation #1")));
    // Broken from now on.
    absl::Status later = comm_->Barrier();
    EXPECT_EQ(later.code(), absl::StatusCode::kFailedPrecondition) << later;
    EXPECT_THAT(later.message(), HasSubstr("broken"));
  }
  SyncWorld();
}

TEST_F(MpiCommunicatorTest, TimeoutNamesARankThatDestroyedItsCommunicator) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  comm_->set_timeout(absl::Milliseconds(300));
  const int leaver = 0;
  if (rank_ == leaver) {
    comm_.reset();
  } else {
    absl::Status status = comm_->Barrier();
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    if (rank_ == 1) std::printf("rank 1 got: %s\n", status.ToString().c_str());
    EXPECT_THAT(status.message(), HasSubstr("barrier on"));
    EXPECT_THAT(status.message(), HasSubstr("did not arrive: world rank 0"));
    EXPECT_THAT(status.message(),
                HasSubstr("world rank 0 destroyed this communicator after operation #0"));
  }
  SyncWorld();
}

TEST_F(MpiCommunicatorTest, ReceiveTimeoutNamesThePeer) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  comm_->set_timeout(absl::Milliseconds(300));
  if (rank_ == 0) {
    std::vector<float> data(4);
    absl::Status status = comm_->Recv(MakeBuffer(absl::MakeSpan(data)), 1, 42);
    EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
    std::printf("rank 0 got: %s\n", status.ToString().c_str());
    EXPECT_THAT(status.message(), HasSubstr("recv on"));
    EXPECT_THAT(status.message(), HasSubstr("did not arrive: world rank 1"));
  }
  SyncWorld();
}

}  // namespace
}  // namespace trident::comm
