// Builds every group communicator of several grids on 8 thread ranks of the
// local backend and runs an all-reduce on each: the result proves that the
// communicator holds exactly the grid's members.

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "gtest/gtest.h"
#include "topology/grid_communicators.h"
#include "topology/layout.pb.h"
#include "topology/process_grid.h"

namespace trident::topology {
namespace {

// Each rank contributes (world rank, world rank squared, 1); the sums over a
// group are the sum and the sum of squares of its members and its size, which
// together pin down the member set for these small groups.
absl::Status CheckAllReduce(const ProcessGrid& grid, GroupKind kind, int rank,
                            comm::Communicator& group) {
  std::vector<int64_t> values = {rank, int64_t{rank} * rank, 1};
  absl::Status status = group.AllReduce(comm::MakeBuffer(absl::MakeSpan(values)),
                                        comm::ReduceOp::kSum);
  if (!status.ok()) return status;
  std::vector<int64_t> expected = {0, 0, 0};
  for (int member : grid.Group(kind, rank)) {
    expected[0] += member;
    expected[1] += int64_t{member} * member;
    expected[2] += 1;
  }
  if (values != expected) {
    return absl::InternalError(absl::StrCat(
        group.name(), ": all-reduce gave (", values[0], ", ", values[1], ", ", values[2],
        ") but the members expect (", expected[0], ", ", expected[1], ", ", expected[2], ")"));
  }
  return absl::OkStatus();
}

absl::Status BuildAndReduce(const ProcessGrid& grid, int rank, comm::Communicator& world) {
  absl::StatusOr<GridCommunicators> comms = BuildGridCommunicators(grid, world);
  if (!comms.ok()) return comms.status();
  for (GroupKind kind : kAllGroupKinds) {
    comm::Communicator* group = comms->Get(kind);
    if (!grid.IsMember(kind, rank)) {
      if (group != nullptr) {
        return absl::InternalError(absl::StrCat(GroupKindName(kind), " built for a non-member"));
      }
      continue;
    }
    if (group == nullptr) {
      return absl::InternalError(absl::StrCat(GroupKindName(kind), " communicator missing"));
    }
    if (group->name() != grid.GroupName(kind, rank) ||
        group->rank() != grid.IndexInGroup(kind, rank) ||
        group->size() != static_cast<int>(grid.Group(kind, rank).size())) {
      return absl::InternalError(absl::StrCat("wrong communicator ", comm::DescribeGroup(*group),
                                              " rank ", group->rank(), " for ",
                                              grid.GroupName(kind, rank)));
    }
    absl::Status status = CheckAllReduce(grid, kind, rank, *group);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

TEST(GridCommunicatorsLocalTest, AllReduceOnEveryGroupOfEveryGrid) {
  constexpr int kWorld = 8;
  comm::CommOptions options;
  options.timeout = absl::Seconds(30);  // A wrong group fails instead of hanging.
  for (const auto& [tp, pp, dp] :
       std::vector<std::tuple<int, int, int>>{{2, 2, 2}, {1, 4, 2}, {4, 1, 2}, {8, 1, 1}}) {
    for (const std::string order : {"tp-dp-pp", "pp-dp-tp", "dp-tp-pp"}) {
      SCOPED_TRACE(absl::StrCat("tp=", tp, " pp=", pp, " dp=", dp, " ", order));
      ParallelLayout layout;
      layout.set_tensor_parallel(tp);
      layout.set_pipeline_parallel(pp);
      layout.set_data_parallel(dp);
      layout.set_rank_order(order);
      absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(layout, kWorld);
      ASSERT_TRUE(grid.ok()) << grid.status();
      const absl::Status status = comm::RunLocalRanks(
          kWorld,
          [&](int rank, comm::Communicator& world) { return BuildAndReduce(*grid, rank, world); },
          options);
      EXPECT_TRUE(status.ok()) << status;
    }
  }
}

}  // namespace
}  // namespace trident::topology
