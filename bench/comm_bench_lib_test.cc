#include "bench/comm_bench_lib.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CommBenchLibTest, BusBandwidthFactorsAreThoseOfNcclTests) {
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kAllReduce, 4), 1.5);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kAllReduce, 8), 1.75);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kReduceScatter, 4), 0.75);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kAllGather, 2), 0.5);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kBroadcast, 8), 1.0);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kSendRecv, 2), 1.0);
  EXPECT_DOUBLE_EQ(BusBandwidthFactor(BenchOp::kAllReduce, 1), 0.0);
}

TEST(CommBenchLibTest, RingAndTreeCostTerms) {
  EXPECT_DOUBLE_EQ(RingCostTerms(4).latency_terms, 6);
  EXPECT_DOUBLE_EQ(RingCostTerms(4).bandwidth_factor, 1.5);
  EXPECT_DOUBLE_EQ(TreeCostTerms(2).latency_terms, 2);  // Depth 1.
  EXPECT_DOUBLE_EQ(TreeCostTerms(2).bandwidth_factor, 2);
  EXPECT_DOUBLE_EQ(TreeCostTerms(7).latency_terms, 4);  // Depth 2.
  EXPECT_DOUBLE_EQ(TreeCostTerms(8).latency_terms, 6);  // Rank 7 is at depth 3.
  EXPECT_DOUBLE_EQ(TreeCostTerms(8).bandwidth_factor, 4);
}

// A model generated from alpha = 2 us, beta = 1 ns/B is recovered exactly from
// its own predictions (up to the neglected bandwidth term of the small size,
// which is made negligible), and the crossover is where the predictions meet.
TEST(CommBenchLibTest, AlphaBetaFitRecoversTheModelAndTheCrossover) {
  const AlphaBeta truth{.alpha_s = 2e-6, .beta_s_per_byte = 1e-9};
  const int n = 8;
  const AllReduceCostTerms ring = RingCostTerms(n);
  const double small = 1e-6, large = 64e6;
  const absl::StatusOr<AlphaBeta> fit =
      FitAlphaBeta(ring, small, PredictSeconds(ring, truth, small), large,
                   PredictSeconds(ring, truth, large));
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(fit->alpha_s, truth.alpha_s, 1e-15);
  EXPECT_NEAR(fit->beta_s_per_byte, truth.beta_s_per_byte, 1e-15);
  const std::optional<double> crossover = TreeBeatsRingBelowBytes(n, truth);
  ASSERT_TRUE(crossover.has_value());
  // 8 ranks: ring 14 alpha + 1.75 B beta, tree 6 alpha + 4 B beta.
  EXPECT_NEAR(*crossover, 8 * 2e-6 / (2.25 * 1e-9), 1e-6);
  EXPECT_NEAR(PredictSeconds(ring, truth, *crossover),
              PredictSeconds(TreeCostTerms(n), truth, *crossover), 1e-15);
  // Two ranks: the tree has no fewer latency terms than the ring.
  EXPECT_FALSE(TreeBeatsRingBelowBytes(2, truth).has_value());
  EXPECT_EQ(FitAlphaBeta(ring, 8, 1e-6, 4, 1e-3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CommBenchLibTest, ParsesByteSizes) {
  EXPECT_EQ(*ParseByteSize("8"), 8);
  EXPECT_EQ(*ParseByteSize("4K"), 4096);
  EXPECT_EQ(*ParseByteSize("64M"), 64 << 20);
  EXPECT_EQ(*ParseByteSize("2MiB"), 2 << 20);
  EXPECT_EQ(*ParseByteSize("1G"), int64_t{1} << 30);
  for (const char* bad : {"", "0", "-4", "12X", "M", "1.5M"}) {
    absl::StatusOr<int64_t> parsed = ParseByteSize(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CommBenchLibTest, SizesGrowByTheStepFactor) {
  EXPECT_THAT(*MessageSizes(8, 8192, 4), ElementsAre(8, 32, 128, 512, 2048, 8192));
  EXPECT_THAT(*MessageSizes(8, 100, 4), ElementsAre(8, 32, 100));
  EXPECT_EQ(MessageSizes(8, 64 << 20, 4)->back(), 64 << 20);
  EXPECT_THAT(*MessageSizes(5, 5, 2), ElementsAre(5));
  EXPECT_EQ(MessageSizes(16, 8, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MessageSizes(8, 64, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CommBenchLibTest, ParsesOps) {
  EXPECT_THAT(*ParseBenchOps("allreduce, sendrecv"),
              ElementsAre(BenchOp::kAllReduce, BenchOp::kSendRecv));
  EXPECT_EQ(ParseBenchOps("all")->size(), 7u);
  absl::StatusOr<std::vector<BenchOp>> bad = ParseBenchOps("allreduce,alltoall");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("'alltoall'"));
}

TEST(CommBenchLibTest, RowsLineUpUnderTheHeader) {
  BenchRow row;
  row.bytes = 67108864;
  row.count = 16777216;
  row.type = "float";
  row.redop = "sum";
  row.time_us = 12345.6;
  row.algbw_gbps = 5.4321;
  row.busbw_gbps = 8.1;
  row.memcpy_gbps = 10.0;
  const std::string line = FormatTableRow(row);
  EXPECT_THAT(line, HasSubstr("    67108864     16777216  float    sum    12345.6     5.43     8.10"
                              "    10.00    0.810       0"));
  const std::string header = FormatTableHeader();
  // The last column of the header ends where the row's does.
  const size_t header_line_end = header.find('\n');
  EXPECT_EQ(header_line_end, line.size() - 1);
}

TEST(CommBenchLibTest, MemcpyBandwidthIsPlausible) {
  // Between 0.1 GB/s and 1000 GB/s on any machine this runs on.
  const double gbps = MeasureMemcpyGBps(1 << 20, absl::Milliseconds(5));
  EXPECT_GT(gbps, 0.1);
  EXPECT_LT(gbps, 1000.0);
}

}  // namespace
}  // namespace trident::bench
