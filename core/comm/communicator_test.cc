#include "core/comm/communicator.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/comm/reduce_kernels.h"
#include "core/dtype.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::comm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A backend that starts every call at once (or refuses all of them) and
// records which Do* methods the template methods reached.
class FakeCommunicator final : public Communicator {
 public:
  FakeCommunicator(int rank, std::vector<int> world_ranks, std::string name)
      : Communicator(CommOptions()),
        rank_(rank),
        world_ranks_(std::move(world_ranks)),
        name_(std::move(name)) {}

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  absl::Span<const int> world_ranks() const override { return world_ranks_; }
  const std::string& name() const override { return name_; }
  absl::string_view backend() const override { return "fake"; }

  // What Do* returns: OK starts the call, an error refuses it.
  void set_refusal(absl::Status status) { refusal_ = std::move(status); }
  // The Do* calls so far, e.g. "all-reduce", "send/recv x3", "group [2, 1]".
  const std::vector<std::string>& calls() const { return calls_; }

 private:
  absl::StatusOr<std::unique_ptr<CommHandle>> Start(std::string call) {
    calls_.push_back(std::move(call));
    if (!refusal_.ok()) return refusal_;
    return CompletedHandle(absl::OkStatus());
  }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllReduce(Buffer, ReduceOp) override {
    return Start("all-reduce");
  }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoReduceScatter(ConstBuffer, Buffer,
                                                              ReduceOp) override {
    return Start("reduce-scatter");
  }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllGather(ConstBuffer, Buffer) override {
    return Start("all-gather");
  }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBroadcast(Buffer, int) override {
    return Start("broadcast");
  }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBarrier() override { return Start("barrier"); }
  absl::StatusOr<std::unique_ptr<CommHandle>> DoSendRecv(absl::Span<const P2POp> ops) override {
    return Start(absl::StrCat("send/recv x", ops.size()));
  }
  absl::StatusOr<std::unique_ptr<Communicator>> DoCreateGroup(absl::Span<const int> ranks,
                                                              absl::string_view) override {
    calls_.push_back(absl::StrCat("group [", absl::StrJoin(ranks, ", "), "]"));
    return absl::UnimplementedError("this test backend makes no groups");
  }

  int rank_;
  std::vector<int> world_ranks_;
  std::string name_;
  absl::Status refusal_;
  std::vector<std::string> calls_;
};

TEST(CommunicatorNamesTest, OpNames) {
  EXPECT_EQ(ReduceOpName(ReduceOp::kSum), "sum");
  EXPECT_EQ(ReduceOpName(ReduceOp::kAvg), "avg");
  EXPECT_EQ(ReduceOpName(ReduceOp::kMax), "max");
  EXPECT_EQ(ReduceOpName(ReduceOp::kMin), "min");
  EXPECT_EQ(CommOpName(CommOp::kAllReduce), "all-reduce");
  EXPECT_EQ(CommOpName(CommOp::kReduceScatter), "reduce-scatter");
  EXPECT_EQ(CommOpName(CommOp::kAllGather), "all-gather");
  EXPECT_EQ(CommOpName(CommOp::kBroadcast), "broadcast");
  EXPECT_EQ(CommOpName(CommOp::kSend), "send");
  EXPECT_EQ(CommOpName(CommOp::kRecv), "recv");
  EXPECT_EQ(CommOpName(CommOp::kBarrier), "barrier");
}

TEST(CommunicatorNamesTest, DescribeGroupCompressesRuns) {
  EXPECT_EQ(DescribeGroup("world", std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}),
            "world (world ranks 0-7)");
  EXPECT_EQ(DescribeGroup("dp", std::vector<int>{0, 4}), "dp (world ranks 0, 4)");
  EXPECT_EQ(DescribeGroup("x", std::vector<int>{3}), "x (world rank 3)");
  EXPECT_EQ(DescribeGroup("x", std::vector<int>{0, 1, 2, 5, 7, 8, 9, 10}),
            "x (world ranks 0-2, 5, 7-10)");
  FakeCommunicator comm(1, {2, 3}, "tp[dp=1,pp=0]");
  EXPECT_EQ(DescribeGroup(comm), "tp[dp=1,pp=0] (world ranks 2, 3)");
}

TEST(CommunicatorNamesTest, ErrorWording) {
  absl::Status deadline = DeadlineExceededError("world (world ranks 0-3)", CommOp::kAllReduce,
                                                absl::Milliseconds(200), std::vector<int>{3});
  EXPECT_EQ(deadline.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(deadline.message(),
            "all-reduce on world (world ranks 0-3) timed out after 200ms; did not arrive: world "
            "rank 3");
  absl::Status two = DeadlineExceededError("g", CommOp::kBarrier, absl::Seconds(1),
                                           std::vector<int>{1, 2});
  EXPECT_THAT(std::string(two.message()), HasSubstr("did not arrive: world ranks 1, 2"));
  absl::Status broken = BrokenCommunicatorError("g", CommOp::kSend, deadline);
  EXPECT_EQ(broken.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(broken.message()), HasSubstr("send on g"));
  EXPECT_THAT(std::string(broken.message()), HasSubstr("did not arrive: world rank 3"));
}

// The template methods check arguments before the backend sees them; the
// exact wording of each message is asserted on every backend by the
// collective suite (tests/comm/collective_suite.cc), so these tests check the
// order of the checks and what reaches the backend.

TEST(CommunicatorValidateTest, ReduceScatterAndAllGatherCounts) {
  FakeCommunicator comm(0, {4, 5, 6}, "tp");
  std::vector<float> in(6), out(2), big(7);
  EXPECT_TRUE(comm.ReduceScatter(MakeConstBuffer<float>(in), MakeBuffer<float>(absl::MakeSpan(out)),
                                 ReduceOp::kSum)
                  .ok());
  absl::Status s = comm.ReduceScatter(MakeConstBuffer<float>(big),
                                      MakeBuffer<float>(absl::MakeSpan(out)), ReduceOp::kSum);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "reduce-scatter on tp (world ranks 4-6): input count 7 must equal output count 2 "
            "times the group size 3 (6)");

  EXPECT_TRUE(
      comm.AllGather(MakeConstBuffer<float>(out), MakeBuffer<float>(absl::MakeSpan(in))).ok());
  s = comm.AllGather(MakeConstBuffer<float>(out), MakeBuffer<float>(absl::MakeSpan(big)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("all-gather"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("output count 7"));

  // Buffers are checked before how they relate.
  std::vector<int32_t> ints(2);
  s = comm.AllGather(ConstBuffer(nullptr, 2, DType::kInt32),
                     MakeBuffer<float>(absl::MakeSpan(big)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("input data is null but count is 2"));
  s = comm.AllGather(MakeConstBuffer<int32_t>(ints), MakeBuffer<float>(absl::MakeSpan(in)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("input dtype int32 differs from output dtype fp32"));

  s = comm.AllReduce(Buffer{nullptr, 3, DType::kFloat32}, ReduceOp::kSum);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("buffer data is null but count is 3"));
  s = comm.AllReduce(Buffer{nullptr, -1, DType::kFloat32}, ReduceOp::kSum);
  EXPECT_THAT(std::string(s.message()), HasSubstr("buffer count -1 is negative"));
  EXPECT_TRUE(comm.AllReduce(Buffer{nullptr, 0, DType::kFloat32}, ReduceOp::kSum).ok());
  EXPECT_THAT(comm.calls(), ElementsAre("reduce-scatter", "all-gather", "all-reduce"));
}

TEST(CommunicatorValidateTest, RootPeerAndTag) {
  FakeCommunicator comm(1, {0, 1, 2}, "pp");
  std::vector<float> two(2);
  const Buffer buffer = MakeBuffer<float>(absl::MakeSpan(two));
  EXPECT_TRUE(comm.Broadcast(buffer, 2).ok());
  absl::Status s = comm.Broadcast(buffer, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "broadcast on pp (world ranks 0-2): root 3 is not a group rank in [0, 3)");
  // The buffer is checked before the root.
  s = comm.Broadcast(Buffer{nullptr, -2, DType::kFloat32}, -1);
  EXPECT_THAT(std::string(s.message()), HasSubstr("buffer count -2 is negative"));

  EXPECT_TRUE(comm.Send(buffer, 0, 0).ok());
  s = comm.Recv(buffer, 5, 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "recv on pp (world ranks 0-2): peer 5 is not a group rank in [0, 3)");
  s = comm.Send(buffer, 1, 0);
  EXPECT_THAT(std::string(s.message()), HasSubstr("calling rank itself"));
  s = comm.Send(buffer, 2, -4);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("tag -4"));
  // The buffer is checked before the peer, the peer before the tag.
  s = comm.Send(ConstBuffer(nullptr, 1, DType::kFloat32), 9, -1);
  EXPECT_THAT(std::string(s.message()), HasSubstr("buffer data is null"));
  s = comm.Send(buffer, 9, -1);
  EXPECT_THAT(std::string(s.message()), HasSubstr("peer 9"));
  EXPECT_THAT(comm.calls(), ElementsAre("broadcast", "send/recv x1"));
}

TEST(CommunicatorValidateTest, BatchChecksEveryOpBeforeStartingAny) {
  FakeCommunicator comm(0, {0, 1, 2}, "pp");
  std::vector<float> a(2), b(2);
  const std::vector<P2POp> ops = {P2POp::Send(MakeConstBuffer<float>(a), 1, 0),
                                  P2POp::Recv(MakeBuffer<float>(absl::MakeSpan(b)), 2, 0),
                                  P2POp::Recv(MakeBuffer<float>(absl::MakeSpan(b)), 0, 3)};
  absl::Status s = comm.BatchSendRecv(ops);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "recv (op 2 of a batch of 3) on pp (world ranks 0-2): peer 0 is the calling rank "
            "itself; point-to-point needs another member");
  EXPECT_TRUE(comm.calls().empty());
  EXPECT_EQ(comm.stats().calls_of(CommOp::kSend), 0);

  P2POp not_p2p = ops[0];
  not_p2p.op = CommOp::kBarrier;
  s = comm.BatchSendRecv({ops[0], not_p2p});
  EXPECT_EQ(s.message(),
            "barrier (op 1 of a batch of 2) on pp (world ranks 0-2): not a send or recv");

  EXPECT_TRUE(comm.BatchSendRecv({}).ok());
  EXPECT_TRUE(comm.calls().empty());
  EXPECT_TRUE(comm.BatchSendRecv(absl::MakeConstSpan(ops).subspan(0, 2)).ok());
  EXPECT_THAT(comm.calls(), ElementsAre("send/recv x2"));
  // Each op of a batch counts as one send or receive.
  EXPECT_EQ(comm.stats().calls_of(CommOp::kSend), 1);
  EXPECT_EQ(comm.stats().calls_of(CommOp::kRecv), 1);
  EXPECT_EQ(comm.stats().bytes_of(CommOp::kRecv), 8);
}

TEST(CommunicatorStatsTest, OnlyCallsTheBackendStartedAreCounted) {
  FakeCommunicator comm(0, {0, 1}, "world");
  std::vector<float> data(4);
  EXPECT_TRUE(comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum).ok());
  EXPECT_FALSE(comm.AllReduce(Buffer{nullptr, 4, DType::kFloat32}, ReduceOp::kSum).ok());
  comm.set_refusal(absl::FailedPreconditionError("broken"));
  absl::Status s = comm.AllReduce(MakeBuffer<float>(absl::MakeSpan(data)), ReduceOp::kSum);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(comm.Send(MakeConstBuffer<float>(data), 1, 0).ok());
  EXPECT_FALSE(comm.Barrier().ok());
  EXPECT_EQ(comm.stats().calls_of(CommOp::kAllReduce), 1);
  EXPECT_EQ(comm.stats().bytes_of(CommOp::kAllReduce), 16);
  EXPECT_EQ(comm.stats().calls_of(CommOp::kSend), 0);
  EXPECT_EQ(comm.stats().calls_of(CommOp::kBarrier), 0);
}

TEST(CommunicatorValidateTest, GroupRanks) {
  FakeCommunicator comm(2, {0, 1, 2, 3}, "world");
  EXPECT_EQ(comm.CreateGroup(std::vector<int>{3, 2}, "g").status().code(),
            absl::StatusCode::kUnimplemented);  // Reached the backend.
  EXPECT_THAT(std::string(comm.CreateGroup({}, "g").status().message()), HasSubstr("empty"));
  EXPECT_THAT(std::string(comm.CreateGroup(std::vector<int>{2, 4}, "g").status().message()),
              HasSubstr("rank 4 is not a group rank in [0, 4)"));
  EXPECT_THAT(std::string(comm.CreateGroup(std::vector<int>{2, 1, 2}, "g").status().message()),
              HasSubstr("rank 2 is listed more than once"));
  absl::Status s = comm.CreateGroup(std::vector<int>{0, 1}, "g").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("do not include the calling rank 2"));
  EXPECT_THAT(comm.calls(), ElementsAre("group [3, 2]"));
}

TEST(ReduceIntoTest, Float32AllOps) {
  std::vector<float> a = {1.0f, -2.0f, 3.5f, 0.0f};
  const std::vector<float> b = {0.5f, -7.0f, 3.5f, -0.0f};
  std::vector<float> sum = a;
  ReduceInto(sum.data(), b.data(), 4, DType::kFloat32, ReduceOp::kSum);
  EXPECT_EQ(sum, (std::vector<float>{1.5f, -9.0f, 7.0f, 0.0f}));
  std::vector<float> avg = a;
  ReduceInto(avg.data(), b.data(), 4, DType::kFloat32, ReduceOp::kAvg);
  DivideInPlace(avg.data(), 4, DType::kFloat32, 2);
  EXPECT_EQ(avg, (std::vector<float>{0.75f, -4.5f, 3.5f, 0.0f}));
  std::vector<float> mx = a;
  ReduceInto(mx.data(), b.data(), 4, DType::kFloat32, ReduceOp::kMax);
  EXPECT_EQ(mx[0], 1.0f);
  EXPECT_EQ(mx[1], -2.0f);
  std::vector<float> mn = a;
  ReduceInto(mn.data(), b.data(), 4, DType::kFloat32, ReduceOp::kMin);
  EXPECT_EQ(mn[0], 0.5f);
  EXPECT_EQ(mn[1], -7.0f);
}

TEST(ReduceIntoTest, FloatMaxMinPropagateNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (ReduceOp op : {ReduceOp::kMax, ReduceOp::kMin}) {
    std::vector<float> a = {nan, 1.0f};
    const std::vector<float> b = {1.0f, nan};
    ReduceInto(a.data(), b.data(), 2, DType::kFloat32, op);
    EXPECT_TRUE(std::isnan(a[0])) << ReduceOpName(op);
    EXPECT_TRUE(std::isnan(a[1])) << ReduceOpName(op);
  }
}

TEST(ReduceIntoTest, IntegersAllOps) {
  std::vector<int32_t> a = {5, -3, 7};
  const std::vector<int32_t> b = {2, -4, 7};
  std::vector<int32_t> x = a;
  ReduceInto(x.data(), b.data(), 3, DType::kInt32, ReduceOp::kSum);
  EXPECT_EQ(x, (std::vector<int32_t>{7, -7, 14}));
  DivideInPlace(x.data(), 3, DType::kInt32, 2);  // Truncates toward zero.
  EXPECT_EQ(x, (std::vector<int32_t>{3, -3, 7}));
  x = a;
  ReduceInto(x.data(), b.data(), 3, DType::kInt32, ReduceOp::kMax);
  EXPECT_EQ(x, (std::vector<int32_t>{5, -3, 7}));
  x = a;
  ReduceInto(x.data(), b.data(), 3, DType::kInt32, ReduceOp::kMin);
  EXPECT_EQ(x, (std::vector<int32_t>{2, -4, 7}));

  const int64_t big = int64_t{1} << 40;
  std::vector<int64_t> y = {big, -big, 3};
  const std::vector<int64_t> z = {big + 1, 5, -3};
  std::vector<int64_t> s = y;
  ReduceInto(s.data(), z.data(), 3, DType::kInt64, ReduceOp::kSum);
  EXPECT_EQ(s, (std::vector<int64_t>{2 * big + 1, -big + 5, 0}));
  s = y;
  ReduceInto(s.data(), z.data(), 3, DType::kInt64, ReduceOp::kMax);
  EXPECT_EQ(s, (std::vector<int64_t>{big + 1, 5, 3}));
  s = y;
  ReduceInto(s.data(), z.data(), 3, DType::kInt64, ReduceOp::kMin);
  EXPECT_EQ(s, (std::vector<int64_t>{big, -big, -3}));
  DivideInPlace(s.data(), 3, DType::kInt64, 4);
  EXPECT_EQ(s, (std::vector<int64_t>{big / 4, -big / 4, 0}));
}

TEST(ReduceIntoTest, IntegerSumWrapsAround) {
  std::vector<int32_t> a = {std::numeric_limits<int32_t>::max()};
  const std::vector<int32_t> b = {1};
  ReduceInto(a.data(), b.data(), 1, DType::kInt32, ReduceOp::kSum);
  EXPECT_EQ(a[0], std::numeric_limits<int32_t>::min());
}

// 16-bit floats: widened, combined in float, rounded once per call. Checked over
// more elements than one internal block (1024) so the block loop is covered.
template <typename T>
void CheckSixteenBit(DType dtype) {
  const int64_t n = 2500;
  std::vector<T> a(n), b(n);
  for (int64_t i = 0; i < n; ++i) {
    const float x = 1.0f + static_cast<float>(i % 97) / 64.0f;
    const float y = -0.5f + static_cast<float>(i % 31) / 128.0f;
    if constexpr (std::is_same_v<T, BFloat16>) {
      a[i] = ToBFloat16(x);
      b[i] = ToBFloat16(y);
    } else {
      a[i] = ToFloat16(x);
      b[i] = ToFloat16(y);
    }
  }
  auto round = [](float v) {
    if constexpr (std::is_same_v<T, BFloat16>) {
      return ToBFloat16(v).bits;
    } else {
      return ToFloat16(v).bits;
    }
  };
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    std::vector<T> out = a;
    ReduceInto(out.data(), b.data(), n, dtype, op);
    if (op == ReduceOp::kAvg) DivideInPlace(out.data(), n, dtype, 3);
    for (int64_t i = 0; i < n; ++i) {
      const float x = ToFloat(a[i]);
      const float y = ToFloat(b[i]);
      float expected = 0;
      switch (op) {
        case ReduceOp::kSum:
          expected = x + y;
          break;
        case ReduceOp::kAvg:  // Rounded after the sum, then again after the divide.
          expected = ToFloat(T{round(x + y)}) / 3.0f;
          break;
        case ReduceOp::kMax:
          expected = std::max(x, y);
          break;
        case ReduceOp::kMin:
          expected = std::min(x, y);
          break;
      }
      ASSERT_EQ(out[i].bits, round(expected)) << DTypeName(dtype) << " " << ReduceOpName(op)
                                              << " at " << i;
    }
  }
}

TEST(ReduceIntoTest, BFloat16AllOps) { CheckSixteenBit<BFloat16>(DType::kBFloat16); }
TEST(ReduceIntoTest, Float16AllOps) { CheckSixteenBit<Float16>(DType::kFloat16); }

TEST(ReduceKernelsTest, AccumulatorRoundsSixteenBitOnce) {
  // 256 + 1 + 1 in bf16: pairwise rounding loses both ones (257 rounds to 256),
  // a float accumulator keeps them and rounds 258 once (exactly representable).
  const std::vector<BFloat16> ranks = {ToBFloat16(256.0f), ToBFloat16(1.0f), ToBFloat16(1.0f)};
  std::vector<BFloat16> pairwise = {ranks[0]};
  ReduceInto(pairwise.data(), &ranks[1], 1, DType::kBFloat16, ReduceOp::kSum);
  ReduceInto(pairwise.data(), &ranks[2], 1, DType::kBFloat16, ReduceOp::kSum);
  EXPECT_EQ(ToFloat(pairwise[0]), 256.0f);

  EXPECT_EQ(AccumulatorDType(DType::kBFloat16), DType::kFloat32);
  EXPECT_EQ(AccumulatorDType(DType::kFloat16), DType::kFloat32);
  EXPECT_EQ(AccumulatorDType(DType::kInt64), DType::kInt64);
  float acc = 0;
  WidenInto(&acc, &ranks[0], 1, DType::kBFloat16);
  AccumulateInto(&acc, &ranks[1], 1, DType::kBFloat16, ReduceOp::kSum);
  AccumulateInto(&acc, &ranks[2], 1, DType::kBFloat16, ReduceOp::kSum);
  BFloat16 out;
  NarrowInto(&out, &acc, 1, DType::kBFloat16);
  EXPECT_EQ(ToFloat(out), 258.0f);
  DivideAccumulator(&acc, 1, DType::kBFloat16, 4);
  EXPECT_EQ(acc, 64.5f);
}

}  // namespace
}  // namespace trident::comm
