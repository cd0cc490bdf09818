#include "core/comm/mpi/mpi_runtime.h"

#include <malloc.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/mpi/launch_env.h"

namespace trident::comm {
namespace {

absl::string_view ThreadLevelName(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
  }
  return "an unknown MPI thread level";
}

}  // namespace

absl::Mutex& MpiLock() {
  static absl::Mutex* const lock = new absl::Mutex();
  return *lock;
}

bool MpiIsActive() {
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

void MpiAbortJob(absl::string_view message, int exit_code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const std::string line = absl::StrCat(message, "\n");
  if (write(STDERR_FILENO, line.data(), line.size()) < 0) std::perror("write");
  // MPI calls are serialised; but a thread that holds the lock may itself be
  // stuck, and ending the job matters more than that rule here.
  // (LockWhenWithTimeout would still wait for the lock after its timeout.)
  const absl::Time give_up = absl::Now() + absl::Seconds(1);
  bool locked = MpiLock().TryLock();
  while (!locked && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
    locked = MpiLock().TryLock();
  }
  if (MpiIsActive()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  if (locked) MpiLock().Unlock();
  _exit(exit_code);
}

absl::StatusOr<std::unique_ptr<MpiRuntime>> MpiRuntime::Initialize(int* argc, char*** argv,
                                                                   MpiRuntimeOptions options) {
  if (options.heap_block_limit < 0 || options.heap_block_limit > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("MpiRuntimeOptions.heap_block_limit = ", options.heap_block_limit,
                     " must lie in [0, ", std::numeric_limits<int>::max(), "]"));
  }
  if (options.heap_block_limit > 0 && std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) {
    const int limit = static_cast<int>(options.heap_block_limit);
    mallopt(M_MMAP_THRESHOLD, limit);
    mallopt(M_TRIM_THRESHOLD, limit);
  }
  absl::MutexLock lock(&MpiLock());
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    return absl::FailedPreconditionError(
        "MPI was finalised already in this process and cannot be initialised again");
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  int provided = MPI_THREAD_SINGLE;
  bool owns = false;
  if (initialized) {
    MPI_Query_thread(&provided);
  } else {
    const int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
      return absl::InternalError(absl::StrCat("MPI_Init_thread failed with MPI error ", rc));
    }
    owns = true;
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    if (owns) MPI_Finalize();
    return absl::FailedPreconditionError(absl::StrCat(
        "MPI provides ", ThreadLevelName(provided),
        " but the MPI backend needs MPI_THREAD_SERIALIZED or better (handles may be waited "
        "on from other threads)"));
  }
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // A launcher whose processes MPI did not wire together (say srun without PMI
  // support) leaves each process alone in a world of 1: every rank would then
  // train by itself, so refuse.
  absl::StatusOr<LaunchInfo> launch = ReadLaunchInfo();
  absl::Status mismatch;
  if (!launch.ok()) {
    mismatch = launch.status();
  } else if (launch->launched() && (launch->size != size || launch->rank != rank)) {
    mismatch = absl::FailedPreconditionError(absl::StrCat(
        "the launcher (", launch->launcher, ") started this process as rank ", launch->rank, " of ",
        launch->size, " but MPI_COMM_WORLD makes it rank ", rank, " of ", size,
        ": MPI was not started by that launcher (check the MPI library and its PMI support)"));
  }
  if (!mismatch.ok()) {
    if (owns) MPI_Finalize();
    return mismatch;
  }
  return std::unique_ptr<MpiRuntime>(new MpiRuntime(owns, provided, rank, size));
}

MpiRuntime::~MpiRuntime() {
  if (!owns_mpi_) return;
  absl::MutexLock lock(&MpiLock());
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace trident::comm
