#ifndef TRIDENT_CORE_COMM_MPI_MPI_RUNTIME_H_
#define TRIDENT_CORE_COMM_MPI_MPI_RUNTIME_H_

// Process-wide MPI state: initialisation and finalisation as an RAII object, and
// the lock that serialises every MPI call of the backend.

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace trident::comm {

struct MpiRuntimeOptions {
  // Open MPI allocates a temporary as large as the message for each
  // nonblocking reduction, and glibc serves blocks of 32 MiB and more with a
  // fresh mmap() each time: the page faults made a 32 MiB all-reduce ten times
  // slower than a 16 MiB one on the development machine. Initialize raises
  // glibc's mmap and trim thresholds (mallopt) to this many bytes, so that such
  // blocks are reused from the heap; 0 leaves glibc's policy alone, as does a
  // MALLOC_MMAP_THRESHOLD_ set in the environment.
  int64_t heap_block_limit = int64_t{1} << 30;
};

// Initialises MPI on creation and finalises it on destruction. Create exactly
// one, early in main(), and keep it until every MPI communicator is destroyed.
//
// MPI is initialised with MPI_Init_thread asking for MPI_THREAD_SERIALIZED:
// handles may be waited on from threads other than the issuing one, and the
// backend makes its MPI calls one at a time under MpiLock(). If MPI was already
// initialised (by a library or an earlier runtime), the runtime adopts it, checks
// the thread level, and leaves finalisation to whoever initialised it.
class MpiRuntime {
 public:
  // `argc`/`argv` may be null. FAILED_PRECONDITION when MPI was finalised
  // already (it cannot be restarted), provides less than MPI_THREAD_SERIALIZED,
  // or disagrees with the launcher's environment about this process's rank;
  // INVALID_ARGUMENT for options out of range; INTERNAL when MPI_Init_thread
  // fails.
  static absl::StatusOr<std::unique_ptr<MpiRuntime>> Initialize(int* argc = nullptr,
                                                                char*** argv = nullptr,
                                                                MpiRuntimeOptions options = {});

  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
  ~MpiRuntime();

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  // The MPI_THREAD_* level MPI provides.
  int thread_level() const { return thread_level_; }
  // Whether this object initialised MPI (and so finalises it).
  bool owns_mpi() const { return owns_mpi_; }

 private:
  MpiRuntime(bool owns_mpi, int thread_level, int world_rank, int world_size)
      : owns_mpi_(owns_mpi),
        thread_level_(thread_level),
        world_rank_(world_rank),
        world_size_(world_size) {}

  bool owns_mpi_;
  int thread_level_;
  int world_rank_;
  int world_size_;
};

// True between MPI_Init and MPI_Finalize.
bool MpiIsActive();

// Writes `message` and a newline to stderr (flushed, in one write so that the
// lines of processes failing together do not mix), then ends every process of
// the job with `exit_code`: MPI_Abort on MPI_COMM_WORLD, which has the launcher
// kill the other processes. This is how a process that failed ends a job whose
// other ranks may be waiting for it: destroying the MpiRuntime instead
// (MPI_Finalize) would wait for every other process to finalise too, forever
// if one of them is stopped or stuck, and would leave the others to time out.
// Callable from any thread, even while another is blocked inside MPI. Never
// returns: should MPI_Abort return, the process exits with `exit_code`.
[[noreturn]] void MpiAbortJob(absl::string_view message, int exit_code);

// Held around every MPI call the backend makes (MPI_THREAD_SERIALIZED means the
// application guarantees one call at a time). Never held while sleeping.
absl::Mutex& MpiLock();

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_MPI_MPI_RUNTIME_H_
