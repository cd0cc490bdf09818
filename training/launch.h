#ifndef TRIDENT_TRAINING_LAUNCH_H_
#define TRIDENT_TRAINING_LAUNCH_H_

// How the ranks of a job come to exist, one home for every tool that runs
// one: with the `local` backend this process starts a thread per rank; with
// `mpi` this process is one rank of a job that mpirun/srun started, and the
// launcher's process count must equal the layout's world size. Either way
// the body runs once per rank of this process with that rank's world
// communicator, so the trainer is written once for both.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/comm/communicator.h"

namespace trident::training {

// The backends LaunchRanks knows, in the order messages list them.
inline constexpr absl::string_view kBackends[] = {"local", "mpi"};

using RankBody = std::function<absl::Status(int rank, comm::Communicator& world)>;

// INVALID_ARGUMENT for an unknown backend (listing kBackends); OK when `name`
// is one of them.
absl::Status ValidateBackend(absl::string_view name);

// Runs `body` for the ranks of a `world_size`-rank job on `backend` and
// returns OK or the first failure. On `local` that is the first rank's error
// (by time), prefixed "rank R: "; it aborts the other ranks' waits at once
// (comm::RunLocalRanks). On `mpi` a rank whose body fails in a job of several
// processes does not return: it prints "<program>: rank R: <status>" to
// stderr and ends the whole job with MPI_Abort (comm::MpiAbortJob, exit
// status 1), because the others may be waiting for it and MPI_Finalize would
// wait for them; a single-process job returns its error. An MPI launch whose
// process count is not `world_size` fails before any body runs (every rank
// alike), saying which -np to use and `world_rule`, what the world is made
// of (e.g. "tp x pp x dp", or "tp x pp x dp workers + ps_servers = 4 + 2").
absl::Status LaunchRanks(absl::string_view backend, int world_size, const RankBody& body,
                         comm::CommOptions options = {}, absl::string_view world_rule = "tp x pp x dp");

// How many ranks of a `world_size`-rank job share this process's cores, so
// that each takes its share of them: every rank on `local`; under MPI the
// launcher's ranks on this node (OMPI_COMM_WORLD_LOCAL_SIZE), or 1 when the
// launcher bound this process to fewer cores than the machine has.
int RanksSharingCores(absl::string_view backend, int world_size);

// How many ranks of a `world_size`-rank job run on this machine (they share
// its memory): every rank on `local`; under MPI OMPI_COMM_WORLD_LOCAL_SIZE
// (1 when the launcher does not say).
int RanksOnThisMachine(absl::string_view backend, int world_size);

// Rank 0's `values` on every rank of `world` (the others' are replaced): how
// rank 0 hands the ranks what it alone decided, such as the checked paths of
// a run or the status of its checks, so that every rank fails alike.
absl::Status BroadcastStrings(comm::Communicator& world, std::vector<std::string>* values);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_LAUNCH_H_
