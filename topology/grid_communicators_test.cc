// BuildGridCommunicators against a recording fake communicator: which groups
// each rank creates, in which order, with which members and names. The test
// with real collectives on the local backend is grid_communicators_local_test.

#include "topology/grid_communicators.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"

namespace trident::topology {
namespace {

using ::testing::ElementsAreArray;

struct CreateCall {
  int world_rank;
  std::vector<int> members;  // World ranks.
  std::string name;
};

// A communicator that only records CreateGroup calls; every data operation
// fails. Its children record into the same log.
class RecordingCommunicator : public comm::Communicator {
 public:
  RecordingCommunicator(std::vector<int> world_ranks, int rank, std::string name,
                        std::vector<CreateCall>* log, std::string fail_on = "")
      : Communicator(comm::CommOptions()),
        world_ranks_(std::move(world_ranks)),
        rank_(rank),
        name_(std::move(name)),
        log_(log),
        fail_on_(std::move(fail_on)) {}

  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(world_ranks_.size()); }
  absl::Span<const int> world_ranks() const override { return world_ranks_; }
  const std::string& name() const override { return name_; }
  absl::string_view backend() const override { return "recording"; }

  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoAllReduce(comm::Buffer,
                                                                comm::ReduceOp) override {
    return Unsupported();
  }
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoReduceScatter(comm::ConstBuffer, comm::Buffer,
                                                                    comm::ReduceOp) override {
    return Unsupported();
  }
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoAllGather(comm::ConstBuffer,
                                                                comm::Buffer) override {
    return Unsupported();
  }
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoBroadcast(comm::Buffer, int) override {
    return Unsupported();
  }
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoBarrier() override { return Unsupported(); }
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoSendRecv(
      absl::Span<const comm::P2POp>) override {
    return Unsupported();
  }

  absl::StatusOr<std::unique_ptr<comm::Communicator>> DoCreateGroup(
      absl::Span<const int> ranks, absl::string_view name) override {
    if (name == fail_on_) return absl::UnavailableError("backend refused");
    std::vector<int> members;
    int my_index = -1;
    for (size_t i = 0; i < ranks.size(); ++i) {
      members.push_back(world_ranks_.at(ranks[i]));
      if (ranks[i] == rank_) my_index = static_cast<int>(i);
    }
    log_->push_back({world_ranks_[rank_], members, std::string(name)});
    return std::make_unique<RecordingCommunicator>(members, my_index, std::string(name), log_);
  }

 private:
  static absl::Status Unsupported() { return absl::UnimplementedError("recording communicator"); }

  std::vector<int> world_ranks_;
  int rank_;
  std::string name_;
  std::vector<CreateCall>* log_;
  std::string fail_on_;
};

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

ProcessGrid MakeGrid(int tp, int pp, int dp, const std::string& order = "tp-dp-pp") {
  ParallelLayout layout;
  layout.set_tensor_parallel(tp);
  layout.set_pipeline_parallel(pp);
  layout.set_data_parallel(dp);
  layout.set_rank_order(order);
  absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(layout, tp * pp * dp);
  EXPECT_TRUE(grid.ok()) << grid.status();
  return *std::move(grid);
}

TEST(BuildGridCommunicatorsTest, EachRankCreatesItsGroupsInFixedOrder) {
  for (const auto& [tp, pp, dp, order] :
       std::vector<std::tuple<int, int, int, std::string>>{{2, 2, 2, "tp-dp-pp"},
                                                           {1, 4, 2, "pp-dp-tp"},
                                                           {4, 1, 2, "dp-tp-pp"},
                                                           {8, 1, 1, "tp-dp-pp"},
                                                           {2, 3, 1, "tp-pp-dp"}}) {
    SCOPED_TRACE(absl::StrCat("tp=", tp, " pp=", pp, " dp=", dp, " ", order));
    const ProcessGrid grid = MakeGrid(tp, pp, dp, order);
    std::vector<CreateCall> log;
    // Which world ranks called CreateGroup under each name.
    std::map<std::string, std::set<int>> callers;
    for (int rank = 0; rank < grid.world_size(); ++rank) {
      RecordingCommunicator world(Iota(grid.world_size()), rank, "world", &log);
      log.clear();
      absl::StatusOr<GridCommunicators> comms = BuildGridCommunicators(grid, world);
      ASSERT_TRUE(comms.ok()) << comms.status();

      std::vector<std::string> expected_names;
      for (GroupKind kind : kAllGroupKinds) {
        if (grid.IsMember(kind, rank)) expected_names.push_back(grid.GroupName(kind, rank));
      }
      std::vector<std::string> names;
      for (const CreateCall& call : log) {
        names.push_back(call.name);
        callers[call.name].insert(call.world_rank);
      }
      EXPECT_THAT(names, ElementsAreArray(expected_names)) << "rank " << rank;

      for (GroupKind kind : kAllGroupKinds) {
        comm::Communicator* c = comms->Get(kind);
        if (!grid.IsMember(kind, rank)) {
          EXPECT_EQ(c, nullptr) << GroupKindName(kind);
          continue;
        }
        ASSERT_NE(c, nullptr) << GroupKindName(kind);
        EXPECT_EQ(c->name(), grid.GroupName(kind, rank));
        EXPECT_THAT(c->world_ranks(), ElementsAreArray(grid.Group(kind, rank)));
        EXPECT_EQ(c->rank(), grid.IndexInGroup(kind, rank));
      }
    }
    // The contract: each group is created by exactly its members.
    for (GroupKind kind : kAllGroupKinds) {
      for (const std::vector<int>& group : grid.AllGroupsOf(kind)) {
        const std::string name = grid.GroupName(kind, group[0]);
        EXPECT_EQ(callers[name], std::set<int>(group.begin(), group.end())) << name;
      }
    }
  }
}

TEST(BuildGridCommunicatorsTest, WorldSizeMustMatchTheGrid) {
  const ProcessGrid grid = MakeGrid(2, 2, 1);
  std::vector<CreateCall> log;
  RecordingCommunicator world(Iota(8), 0, "world", &log);
  absl::StatusOr<GridCommunicators> comms = BuildGridCommunicators(grid, world);
  ASSERT_FALSE(comms.ok());
  EXPECT_EQ(comms.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(comms.status().message()),
            "communicator world has 8 ranks but the process grid has 4 (tp 2 x pp 2 x dp 1)");
  EXPECT_TRUE(log.empty());
}

TEST(BuildGridCommunicatorsTest, BackendErrorsNameTheGroup) {
  const ProcessGrid grid = MakeGrid(2, 2, 2);
  std::vector<CreateCall> log;
  RecordingCommunicator world(Iota(8), 5, "world", &log, /*fail_on=*/"dp[pp=1,tp=1]");
  absl::StatusOr<GridCommunicators> comms = BuildGridCommunicators(grid, world);
  ASSERT_FALSE(comms.ok());
  EXPECT_EQ(comms.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(comms.status().message()), "creating dp[pp=1,tp=1]: backend refused");
}

}  // namespace
}  // namespace trident::topology
