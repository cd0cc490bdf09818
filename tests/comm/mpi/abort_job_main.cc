// A two-rank MPI program whose rank 1 fails or vanishes while rank 0 waits
// with a long timeout; abort_job_test.sh checks that the job ends at once
// with rank 1's message (MpiAbortJob) or within the timeout of a blocking
// group creation (the watchdog), never waiting for longer.
//
//   abort_job_main fail          rank 1 fails: MpiAbortJob with its message,
//                                while rank 0 waits in a barrier (60 s timeout)
//   abort_job_main create_group  rank 1 never joins the group rank 0 creates
//                                (1 s timeout)

#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "core/comm/mpi/mpi_runtime.h"

namespace trident::comm {
namespace {

int Main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "fail" && mode != "create_group") {
    std::fprintf(stderr, "usage: %s fail|create_group\n", argv[0]);
    return 2;
  }
  absl::StatusOr<std::unique_ptr<MpiRuntime>> runtime = MpiRuntime::Initialize(&argc, &argv);
  if (!runtime.ok()) {
    std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str());
    return 1;
  }
  CommOptions options;
  options.timeout = mode == "fail" ? absl::Seconds(60) : absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> world = MpiCommunicator::CreateWorld(options);
  if (!world.ok() || (*world)->size() != 2) {
    std::fprintf(stderr, "needs a world of 2 ranks\n");
    return 1;
  }
  if (mode == "fail") {
    if ((*world)->rank() == 1) {
      absl::SleepFor(absl::Milliseconds(200));  // Rank 0 is in the barrier by now.
      MpiAbortJob("abort_job_main: rank 1: INTERNAL: rank one failed", 1);
    }
    const absl::Status status = (*world)->Barrier();
    std::fprintf(stderr, "rank 0: the barrier returned %s\n", status.ToString().c_str());
    return 1;
  }
  // create_group: rank 1 stays away (a stopped process, say).
  if ((*world)->rank() == 1) {
    absl::SleepFor(absl::Seconds(60));
    return 1;
  }
  const int pair[] = {0, 1};
  absl::StatusOr<std::unique_ptr<Communicator>> group = (*world)->CreateGroup(pair, "pair");
  std::fprintf(stderr, "rank 0: CreateGroup returned %s\n", group.status().ToString().c_str());
  return 1;
}

}  // namespace
}  // namespace trident::comm

int main(int argc, char** argv) { return trident::comm::Main(argc, argv); }
