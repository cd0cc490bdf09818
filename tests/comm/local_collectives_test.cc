// The collective suite on the local backend: each rank is a thread.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "gtest/gtest.h"
#include "tests/comm/collective_suite.h"

namespace {

using trident::comm::CommOptions;
using trident::comm::Communicator;
using trident::comm::suite::RankRunner;
using trident::comm::suite::RunnerTraits;

class LocalRankRunner final : public RankRunner {
 public:
  std::string backend() const override { return "local"; }
  // Threads are cheap; the suite itself asks for at most 8.
  int MaxWorldSize() const override { return 64; }
  RunnerTraits traits() const override { return RunnerTraits(); }  // All of them.

  void Run(int world_size, const std::function<void(Communicator&)>& body) override {
    CommOptions options;
    options.timeout = absl::Seconds(20);  // A bug fails the test instead of hanging it.
    const absl::Status status = trident::comm::RunLocalRanks(
        world_size,
        [&](int, Communicator& world) {
          body(world);
          return absl::OkStatus();
        },
        options);
    EXPECT_TRUE(status.ok()) << status;
  }
};

std::unique_ptr<RankRunner> MakeLocalRankRunner() { return std::make_unique<LocalRankRunner>(); }

}  // namespace

TRIDENT_INSTANTIATE_COLLECTIVE_SUITE(Local, MakeLocalRankRunner);
