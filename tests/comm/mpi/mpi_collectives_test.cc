// The collective suite (tests/comm/collective_suite.h) on the MPI backend: each
// rank is a process started by mpirun, and the whole gtest binary runs in each.

#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "gtest/gtest.h"
#include "tests/comm/collective_suite.h"
#include "tests/comm/mpi/mpi_test_env.h"

namespace {

using trident::comm::Communicator;
using trident::comm::MpiCommunicator;
using trident::comm::suite::RankRunner;
using trident::comm::suite::RunnerTraits;
using trident::comm::testing::MpiTestWorld;

// The world size is mpirun's. Run(n) gives processes [0, n) a fresh group of
// those ranks; the others skip the body and wait at a barrier on the world
// until everyone is done.
class MpiRankRunner final : public RankRunner {
 public:
  std::string backend() const override { return "mpi"; }
  int MaxWorldSize() const override { return MpiTestWorld().size(); }

  RunnerTraits traits() const override {
    RunnerTraits traits;
    traits.timeouts = true;
    // MPI does not compare the members' arguments: a mismatch is undefined
    // behaviour (usually a hang until the timeout), not INVALID_ARGUMENT.
    traits.detects_mismatched_members = false;
    // MPI's algorithms (recursive doubling, rings) fix their own combination
    // order, and 16-bit floats round after every pairwise combination.
    traits.rank_ordered_reduction = false;
    return traits;
  }

  void Run(int world_size, const std::function<void(Communicator&)>& body) override {
    MpiCommunicator& world = MpiTestWorld();
    if (world_size < 1 || world_size > world.size()) {
      ADD_FAILURE() << "Run(" << world_size << ") on an mpirun world of " << world.size();
      return;
    }
    if (world.rank() < world_size) {
      std::vector<int> members(world_size);
      std::iota(members.begin(), members.end(), 0);
      absl::StatusOr<std::unique_ptr<Communicator>> group =
          world.CreateGroup(members, absl::StrCat("suite", world_size));
      if (!group.ok()) {
        ADD_FAILURE() << group.status();
      } else {
        (*group)->set_timeout(absl::Seconds(20));  // A bug fails the test instead of hanging it.
        body(**group);
      }
    }
    // The waiting ranks wait as long as the slowest body may take.
    const absl::Duration usual = world.timeout();
    world.set_timeout(absl::Minutes(5));
    const absl::Status done = world.Barrier();
    world.set_timeout(usual);
    EXPECT_TRUE(done.ok()) << done;
  }
};

std::unique_ptr<RankRunner> MakeMpiRankRunner() { return std::make_unique<MpiRankRunner>(); }

}  // namespace

TRIDENT_INSTANTIATE_COLLECTIVE_SUITE(Mpi, MakeMpiRankRunner);
