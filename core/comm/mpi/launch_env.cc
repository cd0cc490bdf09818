#include "core/comm/mpi/launch_env.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace trident::comm {
namespace {

// The variables one launcher sets. `local_rank` may be null when the launcher
// does not export it (then the local rank is taken as 0).
struct LauncherVariables {
  const char* launcher;
  const char* rank;
  const char* size;
  const char* local_rank;
};

constexpr LauncherVariables kLaunchers[] = {
    {"openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
    {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    // SLURM_PROCID alone is also set inside an sbatch script, where no srun
    // step runs: the step's task count tells an srun task apart.
    {"slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"},
};

absl::StatusOr<int> ReadInt(absl::FunctionRef<const char*(const char*)> getenv, const char* name,
                            const char* launcher) {
  const char* value = getenv(name);
  if (value == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("launcher '", launcher, "' set its rank variable but not ", name));
  }
  int parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "='", value, "' is not an integer (launcher '", launcher, "')"));
  }
  return parsed;
}

}  // namespace

absl::StatusOr<LaunchInfo> ReadLaunchInfo(absl::FunctionRef<const char*(const char*)> getenv) {
  for (const LauncherVariables& vars : kLaunchers) {
    if (getenv(vars.rank) == nullptr || getenv(vars.size) == nullptr) continue;
    LaunchInfo info;
    info.launcher = vars.launcher;
    absl::StatusOr<int> rank = ReadInt(getenv, vars.rank, vars.launcher);
    if (!rank.ok()) return rank.status();
    absl::StatusOr<int> size = ReadInt(getenv, vars.size, vars.launcher);
    if (!size.ok()) return size.status();
    if (*size < 1) {
      return absl::InvalidArgumentError(absl::StrCat(vars.size, "=", *size, " must be at least 1"));
    }
    if (*rank < 0 || *rank >= *size) {
      return absl::InvalidArgumentError(
          absl::StrCat(vars.rank, "=", *rank, " must lie in [0, ", vars.size, "=", *size, ")"));
    }
    info.rank = *rank;
    info.size = *size;
    if (getenv(vars.local_rank) != nullptr) {
      absl::StatusOr<int> local_rank = ReadInt(getenv, vars.local_rank, vars.launcher);
      if (!local_rank.ok()) return local_rank.status();
      if (*local_rank < 0 || *local_rank >= *size) {
        return absl::InvalidArgumentError(absl::StrCat(
            vars.local_rank, "=", *local_rank, " must lie in [0, ", vars.size, "=", *size, ")"));
      }
      info.local_rank = *local_rank;
    }
    return info;
  }
  return LaunchInfo();
}

absl::StatusOr<LaunchInfo> ReadLaunchInfo() {
  return ReadLaunchInfo([](const char* name) -> const char* { return std::getenv(name); });
}

bool RunningUnderLauncher() {
  for (const LauncherVariables& vars : kLaunchers) {
    if (std::getenv(vars.rank) != nullptr && std::getenv(vars.size) != nullptr) return true;
  }
  return false;
}

}  // namespace trident::comm
