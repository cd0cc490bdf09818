#include "topology/process_grid.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"

namespace trident::topology {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string>& AllRankOrders() {
  static const auto* orders = new std::vector<std::string>{
      "tp-dp-pp", "tp-pp-dp", "dp-tp-pp", "dp-pp-tp", "pp-tp-dp", "pp-dp-tp"};
  return *orders;
}

// Grid shapes (tp, pp, dp) covering ones, primes and mixed sizes.
const std::vector<std::tuple<int, int, int>>& Shapes() {
  static const auto* shapes = new std::vector<std::tuple<int, int, int>>{
      {1, 1, 1}, {2, 1, 1}, {1, 2, 1}, {1, 1, 2}, {2, 2, 2}, {1, 4, 2}, {4, 1, 2},
      {8, 1, 1}, {2, 4, 2}, {3, 2, 5}, {5, 3, 2}, {2, 3, 4}, {4, 4, 4}, {1, 7, 3}};
  return *shapes;
}

ParallelLayout MakeLayout(int tp, int pp, int dp, const std::string& order = "tp-dp-pp") {
  ParallelLayout layout;
  layout.set_tensor_parallel(tp);
  layout.set_pipeline_parallel(pp);
  layout.set_data_parallel(dp);
  layout.set_rank_order(order);
  return layout;
}

ProcessGrid MakeGrid(int tp, int pp, int dp, const std::string& order = "tp-dp-pp") {
  absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(MakeLayout(tp, pp, dp, order), tp * pp * dp);
  EXPECT_TRUE(grid.ok()) << grid.status();
  return *std::move(grid);
}

// The rank of coordinates computed independently of ProcessGrid: a mixed-radix
// number whose digits are the coordinates in `order`, first digit least
// significant.
int ExpectedRank(const std::string& order, int tp, int pp, int dp, const Coordinates& c) {
  const std::map<std::string, std::pair<int, int>> axis = {
      {"tp", {c.tp, tp}}, {"pp", {c.pp, pp}}, {"dp", {c.dp, dp}}};
  int rank = 0;
  int weight = 1;
  for (absl::string_view name : absl::StrSplit(order, '-')) {
    const auto& [value, size] = axis.at(std::string(name));
    rank += value * weight;
    weight *= size;
  }
  return rank;
}

TEST(ProcessGridTest, RankCoordinateRoundTripForEveryOrderAndShape) {
  for (const std::string& order : AllRankOrders()) {
    for (const auto& [tp, pp, dp] : Shapes()) {
      SCOPED_TRACE(absl::StrCat(order, " tp=", tp, " pp=", pp, " dp=", dp));
      const ProcessGrid grid = MakeGrid(tp, pp, dp, order);
      ASSERT_EQ(grid.world_size(), tp * pp * dp);
      std::set<std::tuple<int, int, int>> seen;
      for (int rank = 0; rank < grid.world_size(); ++rank) {
        const Coordinates c = grid.CoordinatesOf(rank);
        ASSERT_GE(c.tp, 0);
        ASSERT_LT(c.tp, tp);
        ASSERT_GE(c.pp, 0);
        ASSERT_LT(c.pp, pp);
        ASSERT_GE(c.dp, 0);
        ASSERT_LT(c.dp, dp);
        EXPECT_EQ(grid.RankOf(c), rank);
        EXPECT_EQ(ExpectedRank(order, tp, pp, dp, c), rank);
        EXPECT_TRUE(seen.insert({c.dp, c.pp, c.tp}).second) << "duplicate coordinates";
      }
      EXPECT_EQ(seen.size(), static_cast<size_t>(grid.world_size()));
    }
  }
}

TEST(ProcessGridTest, FirstAxisOfTheOrderVariesFastest) {
  const ProcessGrid pp_first = MakeGrid(2, 3, 2, "pp-tp-dp");
  EXPECT_EQ(pp_first.CoordinatesOf(1), (Coordinates{.dp = 0, .pp = 1, .tp = 0}));
  EXPECT_EQ(pp_first.CoordinatesOf(3), (Coordinates{.dp = 0, .pp = 0, .tp = 1}));
  EXPECT_EQ(pp_first.CoordinatesOf(6), (Coordinates{.dp = 1, .pp = 0, .tp = 0}));
  const ProcessGrid dp_first = MakeGrid(2, 3, 2, "dp-pp-tp");
  EXPECT_EQ(dp_first.CoordinatesOf(1), (Coordinates{.dp = 1, .pp = 0, .tp = 0}));
  EXPECT_EQ(dp_first.CoordinatesOf(2), (Coordinates{.dp = 0, .pp = 1, .tp = 0}));
  EXPECT_EQ(dp_first.CoordinatesOf(6), (Coordinates{.dp = 0, .pp = 0, .tp = 1}));
}

// The coordinates every member of a group of `kind` shares.
std::vector<int> FixedCoordinates(GroupKind kind, const Coordinates& c) {
  switch (kind) {
    case GroupKind::kTensor:
      return {c.dp, c.pp};
    case GroupKind::kPipeline:
      return {c.dp, c.tp};
    case GroupKind::kData:
      return {c.pp, c.tp};
    case GroupKind::kModelParallel:
      return {c.dp};
    case GroupKind::kEmbedding:
      return {c.dp, c.tp};
  }
  return {};
}

// The coordinate that orders a group's members.
int GroupOrderKey(GroupKind kind, const Coordinates& c, int tp) {
  switch (kind) {
    case GroupKind::kTensor:
      return c.tp;
    case GroupKind::kPipeline:
    case GroupKind::kEmbedding:
      return c.pp;
    case GroupKind::kData:
      return c.dp;
    case GroupKind::kModelParallel:
      return c.pp * tp + c.tp;
  }
  return 0;
}

TEST(ProcessGridTest, GroupsPartitionTheRanksAndAreOrdered) {
  for (const std::string& order : AllRankOrders()) {
    for (const auto& [tp, pp, dp] : Shapes()) {
      SCOPED_TRACE(absl::StrCat(order, " tp=", tp, " pp=", pp, " dp=", dp));
      const ProcessGrid grid = MakeGrid(tp, pp, dp, order);
      const std::map<GroupKind, size_t> expected_size = {
          {GroupKind::kTensor, tp},
          {GroupKind::kPipeline, pp},
          {GroupKind::kData, dp},
          {GroupKind::kModelParallel, tp * pp},
          {GroupKind::kEmbedding, pp == 1 ? 1 : 2}};
      for (GroupKind kind : kAllGroupKinds) {
        SCOPED_TRACE(GroupKindName(kind));
        const std::vector<std::vector<int>> groups = grid.AllGroupsOf(kind);
        std::vector<int> times_seen(grid.world_size(), 0);
        int previous_first = -1;
        for (const std::vector<int>& group : groups) {
          ASSERT_EQ(group.size(), expected_size.at(kind));
          EXPECT_GT(group.front(), previous_first) << "groups not ordered by first member";
          previous_first = group.front();
          const std::vector<int> fixed = FixedCoordinates(kind, grid.CoordinatesOf(group[0]));
          for (size_t i = 0; i < group.size(); ++i) {
            const int member = group[i];
            ++times_seen[member];
            const Coordinates c = grid.CoordinatesOf(member);
            EXPECT_EQ(FixedCoordinates(kind, c), fixed) << "member " << member;
            EXPECT_EQ(grid.Group(kind, member), group);
            EXPECT_EQ(grid.IndexInGroup(kind, member), static_cast<int>(i));
            EXPECT_EQ(grid.GroupName(kind, member), grid.GroupName(kind, group[0]));
            if (i > 0) {
              EXPECT_LT(GroupOrderKey(kind, grid.CoordinatesOf(group[i - 1]), tp),
                        GroupOrderKey(kind, c, tp));
            }
          }
        }
        for (int rank = 0; rank < grid.world_size(); ++rank) {
          const Coordinates c = grid.CoordinatesOf(rank);
          const bool member = kind != GroupKind::kEmbedding || c.pp == 0 || c.pp == pp - 1;
          EXPECT_EQ(times_seen[rank], member ? 1 : 0) << "rank " << rank;
          EXPECT_EQ(grid.IsMember(kind, rank), member) << "rank " << rank;
          const std::vector<int> own = grid.Group(kind, rank);
          EXPECT_EQ(std::count(own.begin(), own.end(), rank), member ? 1 : 0);
        }
        // Group names are unique across the groups of a kind.
        std::set<std::string> names;
        for (const auto& group : groups) names.insert(grid.GroupName(kind, group[0]));
        EXPECT_EQ(names.size(), groups.size());
      }
    }
  }
}

TEST(ProcessGridTest, EmbeddingGroupHoldsFirstAndLastStage) {
  for (const auto& [tp, pp, dp] : Shapes()) {
    SCOPED_TRACE(absl::StrCat("tp=", tp, " pp=", pp, " dp=", dp));
    const ProcessGrid grid = MakeGrid(tp, pp, dp);
    for (int rank = 0; rank < grid.world_size(); ++rank) {
      const std::vector<int> pipeline = grid.PipelineGroup(rank);
      const std::vector<int> embedding = grid.EmbeddingGroup(rank);
      if (pp == 1) {
        EXPECT_THAT(embedding, ElementsAre(rank));
      } else {
        EXPECT_THAT(embedding, ElementsAre(pipeline.front(), pipeline.back()));
      }
      EXPECT_EQ(grid.IsFirstStage(rank), rank == pipeline.front());
      EXPECT_EQ(grid.IsLastStage(rank), rank == pipeline.back());
    }
  }
}

TEST(ProcessGridTest, PipelineNeighboursFormARing) {
  for (const std::string& order : AllRankOrders()) {
    for (const auto& [tp, pp, dp] : Shapes()) {
      SCOPED_TRACE(absl::StrCat(order, " tp=", tp, " pp=", pp, " dp=", dp));
      const ProcessGrid grid = MakeGrid(tp, pp, dp, order);
      for (int rank = 0; rank < grid.world_size(); ++rank) {
        const std::vector<int> pipeline = grid.PipelineGroup(rank);
        const int stage = grid.CoordinatesOf(rank).pp;
        EXPECT_EQ(grid.NextStageRank(rank), pipeline[(stage + 1) % pp]);
        EXPECT_EQ(grid.PrevStageRank(rank), pipeline[(stage + pp - 1) % pp]);
        EXPECT_EQ(grid.PrevStageRank(grid.NextStageRank(rank)), rank);
        int walker = rank;
        for (int step = 0; step < pp; ++step) walker = grid.NextStageRank(walker);
        EXPECT_EQ(walker, rank) << "pp steps around the ring come back";
      }
    }
  }
}

// Megatron-LM's documented example: 16 GPUs, tp=2, pp=4 (so dp=2), rank order
// tp-dp-pp.
TEST(ProcessGridTest, MegatronLayoutTp2Pp4Dp2) {
  const ProcessGrid grid = MakeGrid(2, 4, 2, "tp-dp-pp");
  EXPECT_EQ(grid.AllGroupsOf(GroupKind::kTensor),
            (std::vector<std::vector<int>>{
                {0, 1}, {2, 3}, {4, 5}, {6, 7}, {8, 9}, {10, 11}, {12, 13}, {14, 15}}));
  EXPECT_EQ(grid.AllGroupsOf(GroupKind::kPipeline),
            (std::vector<std::vector<int>>{
                {0, 4, 8, 12}, {1, 5, 9, 13}, {2, 6, 10, 14}, {3, 7, 11, 15}}));
  EXPECT_EQ(grid.AllGroupsOf(GroupKind::kData),
            (std::vector<std::vector<int>>{
                {0, 2}, {1, 3}, {4, 6}, {5, 7}, {8, 10}, {9, 11}, {12, 14}, {13, 15}}));
  EXPECT_EQ(grid.AllGroupsOf(GroupKind::kModelParallel),
            (std::vector<std::vector<int>>{{0, 1, 4, 5, 8, 9, 12, 13},
                                           {2, 3, 6, 7, 10, 11, 14, 15}}));
  EXPECT_EQ(grid.AllGroupsOf(GroupKind::kEmbedding),
            (std::vector<std::vector<int>>{{0, 12}, {1, 13}, {2, 14}, {3, 15}}));

  EXPECT_EQ(grid.CoordinatesOf(5), (Coordinates{.dp = 0, .pp = 1, .tp = 1}));
  EXPECT_EQ(grid.CoordinatesOf(14), (Coordinates{.dp = 1, .pp = 3, .tp = 0}));
  EXPECT_EQ(grid.GroupName(GroupKind::kTensor, 5), "tp[dp=0,pp=1]");
  EXPECT_EQ(grid.GroupName(GroupKind::kPipeline, 5), "pp[dp=0,tp=1]");
  EXPECT_EQ(grid.GroupName(GroupKind::kData, 14), "dp[pp=3,tp=0]");
  EXPECT_EQ(grid.GroupName(GroupKind::kModelParallel, 14), "mp[dp=1]");
  EXPECT_EQ(grid.GroupName(GroupKind::kEmbedding, 14), "embedding[dp=1,tp=0]");
  EXPECT_EQ(grid.NextStageRank(13), 1);
  EXPECT_EQ(grid.PrevStageRank(1), 13);
  EXPECT_EQ(grid.NextStageRank(6), 10);
  EXPECT_FALSE(grid.IsMember(GroupKind::kEmbedding, 5));
  EXPECT_EQ(grid.IndexInGroup(GroupKind::kEmbedding, 13), 1);
  EXPECT_EQ(grid.IndexInGroup(GroupKind::kModelParallel, 13), 7);
}

TEST(ParseRankOrderTest, AcceptsEveryPermutation) {
  for (const std::string& order : AllRankOrders()) {
    absl::StatusOr<RankOrder> parsed = ParseRankOrder(order);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(RankOrderName(*parsed), order);
  }
  EXPECT_THAT(*ParseRankOrder("pp-tp-dp"),
              ElementsAre(Axis::kPipeline, Axis::kTensor, Axis::kData));
}

TEST(ParseRankOrderTest, RejectsMalformedOrders) {
  const std::string rule =
      " (each of tp, dp, pp exactly once, joined by '-', fastest varying first, e.g. "
      "\"tp-dp-pp\")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"tp-xp-pp", "rank_order=\"tp-xp-pp\": unknown axis \"xp\""},
      {"tp-tp-pp", "rank_order=\"tp-tp-pp\": axis \"tp\" appears more than once"},
      {"tp-dp-pp-tp", "rank_order=\"tp-dp-pp-tp\": axis \"tp\" appears more than once"},
      {"tp-dp", "rank_order=\"tp-dp\": axis \"pp\" is missing"},
      {"", "rank_order=\"\": unknown axis \"\""},
      {"tp--dp-pp", "rank_order=\"tp--dp-pp\": unknown axis \"\""},
      {"TP-DP-PP", "rank_order=\"TP-DP-PP\": unknown axis \"TP\""},
      {"tp,dp,pp", "rank_order=\"tp,dp,pp\": unknown axis \"tp,dp,pp\""},
  };
  for (const auto& [text, message] : cases) {
    absl::StatusOr<RankOrder> parsed = ParseRankOrder(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(parsed.status().message()), message + rule);
  }
}

TEST(ProcessGridCreateTest, RejectsGridRuleViolations) {
  auto error = [](const ParallelLayout& layout, int world) {
    absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(layout, world);
    EXPECT_FALSE(grid.ok());
    EXPECT_EQ(grid.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(grid.status().message());
  };
  EXPECT_EQ(error(MakeLayout(2, 2, 2), 4),
            "tensor_parallel=2 x pipeline_parallel=2 x data_parallel=2 = 8 must equal the world "
            "size 4 (every rank holds one grid position)");
  EXPECT_EQ(error(MakeLayout(0, 2, 2), 0), "tensor_parallel=0 must be positive");
  EXPECT_EQ(error(MakeLayout(2, -1, 2), 4), "pipeline_parallel=-1 must be positive");
  EXPECT_EQ(error(MakeLayout(2, 1, 0), 2), "data_parallel=0 must be positive");
  EXPECT_EQ(error(MakeLayout(1, 1, 1), 0), "world size 0 must be positive");
  EXPECT_THAT(error(MakeLayout(2, 1, 1, "tp-dp-qq"), 2),
              HasSubstr("rank_order=\"tp-dp-qq\": unknown axis \"qq\""));
  // Products beyond int are not wrapped around into a match.
  EXPECT_THAT(error(MakeLayout(65536, 65536, 1), 0), HasSubstr("world size 0 must be positive"));
  EXPECT_THAT(error(MakeLayout(65536, 65536, 1), 1),
              HasSubstr("= 4294967296 must equal the world size 1"));
}

TEST(FormatRankListTest, AbbreviatesRunsAndLongLists) {
  EXPECT_EQ(FormatRankList({}), "");
  EXPECT_EQ(FormatRankList({5}), "5");
  EXPECT_EQ(FormatRankList({0, 1}), "0-1");
  EXPECT_EQ(FormatRankList({0, 1, 2, 3, 4, 5, 6, 7}), "0-7");
  EXPECT_EQ(FormatRankList({0, 4, 8, 12}), "0,4,8,12");
  EXPECT_EQ(FormatRankList({0, 4, 8, 12, 16, 20, 24, 28}), "0,4,..,28");
  EXPECT_EQ(FormatRankList({0, 1, 4, 5, 8, 9, 12, 13}), "0-1,4-5,8-9,12-13");
  EXPECT_EQ(FormatRankList({0, 1, 4, 5, 8, 9, 12, 13, 16, 17}), "0-1,4-5,..,16-17");
}

TEST(DescribeTest, PrintsLayoutGroupsAndOneRowPerRank) {
  ParallelLayout layout = MakeLayout(2, 2, 2);
  layout.set_num_micro_batches(4);
  layout.set_micro_batch_size(2);
  layout.set_sequence_parallel(true);
  layout.set_zero_stage(1);
  absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(layout, 8);
  ASSERT_TRUE(grid.ok()) << grid.status();
  const std::string text = grid->Describe();
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u + 8u) << text;
  EXPECT_EQ(lines[0],
            "Process grid: tp 2 x pp 2 x dp 2 = 8 ranks, rank order tp-dp-pp (tp varies fastest)");
  EXPECT_EQ(lines[1], "  schedule 1f1b; global batch 16 = micro-batch size 2 x 4 micro-batches x dp 2");
  EXPECT_EQ(lines[2],
            "  sequence parallel on, ZeRO stage 1, recompute none, gradient compression none, "
            "grad reduce overlapped with backward in 25 MiB buckets");
  EXPECT_EQ(lines[3], "  groups: 4 tp of 2, 4 pp of 2, 4 dp of 2, 2 mp of 4, 4 embedding of 2");
  EXPECT_EQ(lines[4],
            "  rank  dp  pp  tp  tp group  pp group  dp group  mp group  embedding  prev  next");
  // Rank 5 = tp 1, dp 0, pp 1 in tp-dp-pp order.
  EXPECT_EQ(lines[10],
            "     5   0   1   1  4-5       1,5       5,7       0-1,4-5   1,5           1     1");
  std::cout << text;
}

TEST(DescribeTest, MarksMiddleStagesAndTruncatesLongTables) {
  ParallelLayout layout = MakeLayout(2, 4, 8);
  layout.set_schedule(INTERLEAVED_1F1B);
  layout.set_virtual_pipeline_stages(2);
  layout.set_num_micro_batches(8);
  absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(layout, 64);
  ASSERT_TRUE(grid.ok()) << grid.status();
  const std::string full = grid->Describe();
  EXPECT_THAT(full, HasSubstr("schedule interleaved with 2 chunks per stage"));
  // Rank 16 is stage 1 of 4: no embedding group.
  EXPECT_THAT(full, HasSubstr("\n    16   0   1   0  16-17     0,16,32,48   16,18,..,30  "
                              "0-1,16-17,32-33,48-49    -             0    32\n"));
  const std::vector<std::string> full_lines = absl::StrSplit(full, '\n', absl::SkipEmpty());
  EXPECT_EQ(full_lines.size(), 5u + 64u);
  const std::string shortened = grid->Describe(/*max_rows=*/10);
  const std::vector<std::string> lines = absl::StrSplit(shortened, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u + 10u + 1u);
  EXPECT_EQ(lines.back(), "  ... 54 more ranks (same pattern)");
}

}  // namespace
}  // namespace trident::topology
