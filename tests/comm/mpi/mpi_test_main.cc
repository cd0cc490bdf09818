// main() for GoogleTest binaries that run under mpirun (see mpi_test_env.h).

#include <mpi.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/check.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "gtest/gtest.h"
#include "tests/comm/mpi/mpi_test_env.h"

namespace trident::comm::testing {
namespace {

MpiCommunicator* test_world = nullptr;

// Replaces GoogleTest's printer on ranks other than 0: reports failed
// assertions and failed tests, prefixed with the rank, and nothing else.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : prefix_(absl::StrCat("[world rank ", rank, "] ")) {}

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "%s%s:%d: Failure\n%s%s\n", prefix_.c_str(),
                 result.file_name() ? result.file_name() : "unknown", result.line_number(),
                 prefix_.c_str(), result.message());
    std::fflush(stderr);
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!info.result()->Failed()) return;
    std::fprintf(stderr, "%s[  FAILED  ] %s.%s\n", prefix_.c_str(), info.test_suite_name(),
                 info.name());
    std::fflush(stderr);
  }

 private:
  std::string prefix_;
};

}  // namespace

MpiCommunicator& MpiTestWorld() {
  TRIDENT_CHECK(test_world != nullptr) << "MpiTestWorld() outside mpi_test_main";
  return *test_world;
}

}  // namespace trident::comm::testing

int main(int argc, char** argv) {
  using trident::comm::MpiCommunicator;
  using trident::comm::MpiRuntime;
  ::testing::InitGoogleTest(&argc, argv);
  absl::StatusOr<std::unique_ptr<MpiRuntime>> runtime = MpiRuntime::Initialize(&argc, &argv);
  TRIDENT_CHECK_OK(runtime.status());
  const int rank = (*runtime)->world_rank();
  if (rank != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new trident::comm::testing::FailurePrinter(rank));
    // One XML report (Bazel's) is enough; ranks would overwrite each other's.
    GTEST_FLAG_SET(output, "");
  }
  trident::comm::CommOptions options;
  options.timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> world = MpiCommunicator::CreateWorld(options);
  TRIDENT_CHECK_OK(world.status());
  trident::comm::testing::test_world = world->get();

  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;

  // Tell rank 0 who failed, so that its summary is complete.
  std::vector<int> failures((*runtime)->world_size());
  MPI_Allgather(&failed, 1, MPI_INT, failures.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> failed_ranks;
  for (int r = 0; r < static_cast<int>(failures.size()); ++r) {
    if (failures[r]) failed_ranks.push_back(r);
  }
  if (rank == 0) {
    if (failed_ranks.empty()) {
      std::printf("[world rank 0] all %zu ranks passed\n", failures.size());
    } else {
      std::printf("[world rank 0] tests FAILED on world ranks %s\n",
                  absl::StrJoin(failed_ranks, ", ").c_str());
    }
    std::fflush(stdout);
  }
  trident::comm::testing::test_world = nullptr;
  world->reset();
  runtime->reset();
  return failed_ranks.empty() ? 0 : 1;
}
