#ifndef TRIDENT_CORE_COMM_MPI_LAUNCH_ENV_H_
#define TRIDENT_CORE_COMM_MPI_LAUNCH_ENV_H_

// What the process launcher (mpirun, mpiexec, srun) tells a process about its
// place in the job, read from the environment before MPI is initialised: a
// binary decides from this whether to start the MPI backend at all, and picks
// its GPU from the local rank.

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace trident::comm {

struct LaunchInfo {
  // "openmpi" (OMPI_COMM_WORLD_*), "pmi" (MPICH/Hydra: PMI_RANK, PMI_SIZE),
  // "slurm" (srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS), or "" when the process
  // was started by hand (then it is rank 0 of a world of 1).
  std::string launcher;
  int rank = 0;
  int size = 1;
  // Position among the job's processes on this machine (GPU selection).
  int local_rank = 0;

  bool launched() const { return !launcher.empty(); }
};

// Reads the launcher's variables through `getenv` (a stand-in in tests). The
// first launcher whose rank variable is set wins, in the order listed above.
// A set but malformed or inconsistent value (not an integer, rank outside
// [0, size), negative local rank) is INVALID_ARGUMENT naming the variable.
absl::StatusOr<LaunchInfo> ReadLaunchInfo(absl::FunctionRef<const char*(const char*)> getenv);

// ReadLaunchInfo over the process environment.
absl::StatusOr<LaunchInfo> ReadLaunchInfo();

// True when a launcher started this process (its rank variable is set), even if
// the values are malformed: the caller should then use the MPI backend and let
// ReadLaunchInfo report the problem.
bool RunningUnderLauncher();

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_MPI_LAUNCH_ENV_H_
