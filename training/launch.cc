#include "training/launch.h"

#include <errno.h>

#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "core/exec_context.h"
#include "core/comm/local/local_world.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/status_macros.h"

namespace trident::training {

absl::Status ValidateBackend(absl::string_view name) {
  for (absl::string_view known : kBackends) {
    if (name == known) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("--backend=", name, " is unknown: use ",
                                                 absl::StrJoin(kBackends, " or ")));
}

absl::Status LaunchRanks(absl::string_view backend, int world_size, const RankBody& body,
                         comm::CommOptions options, absl::string_view world_rule) {
  RETURN_IF_ERROR(ValidateBackend(backend));
  if (backend == "local") return comm::RunLocalRanks(world_size, body, options);

  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiRuntime> runtime, comm::MpiRuntime::Initialize());
  if (runtime->world_size() != world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the launcher started ", runtime->world_size(), " processes, but the layout needs ",
        world_rule, " = ",
        world_size, " ranks (run mpirun -np ", world_size, ")"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiCommunicator> world,
                   comm::MpiCommunicator::CreateWorld(options));
  const int rank = world->rank();
  absl::Status status = body(rank, *world);
  if (!status.ok() && runtime->world_size() > 1) {
    // The other ranks may be waiting for this one (or this one timed out
    // waiting for a stopped peer): returning would destroy the runtime, and
    // MPI_Finalize waits for every process. Say why first, then end the job.
    comm::MpiAbortJob(
        absl::StrCat(program_invocation_short_name, ": rank ", rank, ": ", status.ToString()), 1);
  }
  return status;
}

int RanksOnThisMachine(absl::string_view backend, int world_size) {
  if (backend == "local") return world_size;
  int local_ranks = 1;
  if (const char* value = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) {
    if (!absl::SimpleAtoi(value, &local_ranks) || local_ranks < 1) local_ranks = 1;
  }
  return local_ranks;
}

int RanksSharingCores(absl::string_view backend, int world_size) {
  if (backend == "local") return world_size;
  // A launcher that bound this process to some cores gave them to it alone.
  if (AvailableCores() < static_cast<int>(std::thread::hardware_concurrency())) return 1;
  return RanksOnThisMachine(backend, world_size);
}

absl::Status BroadcastStrings(comm::Communicator& world, std::vector<std::string>* values) {
  if (world.size() == 1) return absl::OkStatus();
  // Lengths first (count, then each length), then the bytes in one message.
  std::vector<int64_t> lengths;
  if (world.rank() == 0) {
    lengths.push_back(static_cast<int64_t>(values->size()));
    for (const std::string& value : *values) lengths.push_back(static_cast<int64_t>(value.size()));
  }
  int64_t count = lengths.empty() ? 0 : lengths[0];
  RETURN_IF_ERROR(world.Broadcast(comm::Buffer{&count, 1, DType::kInt64}, 0));
  lengths.resize(count + 1);
  RETURN_IF_ERROR(world.Broadcast(comm::Buffer{lengths.data() + 1, count, DType::kInt64}, 0));
  std::string bytes;
  if (world.rank() == 0) {
    for (const std::string& value : *values) bytes += value;
  }
  int64_t total = 0;
  for (int64_t i = 1; i <= count; ++i) total += lengths[i];
  // The communicators carry no byte type: the bytes travel as int64 words.
  bytes.resize((total + 7) / 8 * 8);
  RETURN_IF_ERROR(world.Broadcast(
      comm::Buffer{bytes.data(), static_cast<int64_t>(bytes.size() / 8), DType::kInt64}, 0));
  if (world.rank() != 0) {
    values->clear();
    int64_t offset = 0;
    for (int64_t i = 1; i <= count; ++i) {
      values->push_back(bytes.substr(offset, lengths[i]));
      offset += lengths[i];
    }
  }
  return absl::OkStatus();
}

}  // namespace trident::training
