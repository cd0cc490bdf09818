#include "training/launch.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
                         comm::CommOptions options) {
  RETURN_IF_ERROR(ValidateBackend(backend));
  if (backend == "local") return comm::RunLocalRanks(world_size, body, options);

  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiRuntime> runtime, comm::MpiRuntime::Initialize());
  if (runtime->world_size() != world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the launcher started ", runtime->world_size(), " processes, but the layout needs tp x pp "
        "x dp = ", world_size, " ranks (run mpirun -np ", world_size, ")"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiCommunicator> world,
                   comm::MpiCommunicator::CreateWorld(options));
  return body(world->rank(), *world);
}

}  // namespace trident::training
