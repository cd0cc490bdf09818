#ifndef TRIDENT_CORE_COMM_MPI_ARRIVAL_BOARD_H_
#define TRIDENT_CORE_COMM_MPI_ARRIVAL_BOARD_H_

// Arrival counters that peers can read without the owner's help, so that a
// timed-out collective can name the ranks that never entered it. Internal to the
// MPI backend.
//
// Every process exposes one MPI RMA window (MPI_Win_allocate over the world,
// passive target, MPI_Win_lock_all for the window's lifetime) holding a table of
// slots. Each communicator a process belongs to owns one slot in that process's
// table: a tag identifying the communicator and the number of the last collective
// the process entered on it. The members of a communicator exchange their slot
// numbers when it is created. On a timeout, a member reads its peers' slots with
// atomic MPI_Rget_accumulate(MPI_NO_OP) calls bounded by a grace period: on one
// machine (osc/sm) this is a load from shared memory that needs nothing from the
// peer; across machines a peer that never calls MPI may not answer in time.
//
// The window is never freed explicitly: MPI_Win_free is collective and would
// hang on a peer that timed out or vanished; MPI_Finalize releases it.
//
// The table ends with a heartbeat: a thread of each process increments it every
// kHeartbeatPeriod for as long as the board exists. A member that did not
// arrive may be waiting for someone else in turn; SilentRanks finds the
// processes whose heartbeat stands still (stopped with SIGSTOP, frozen, or
// gone), which is where a chain of waits ends, so a timeout can name them.

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace trident::comm::mpi_internal {

// What one member's slot showed.
struct ArrivalReading {
  enum class Kind {
    kRead,        // `tag` and `last_op` hold the slot's contents; `left` tells
                  // that the member destroyed the communicator after `last_op`.
    kNoResponse,  // The read did not complete within the grace period.
    kUntracked,   // The member has no slot for this communicator.
  };
  Kind kind = Kind::kUntracked;
  int64_t tag = 0;
  int64_t last_op = 0;
  bool left = false;
};

// Where to read one member's counter.
struct ArrivalSlot {
  int world_rank = 0;
  int64_t slot = -1;  // -1: the member has no slot (its table was full).
};

class ArrivalBoard {
 public:
  static constexpr int64_t kSlots = 1024;
  // The world communicator always uses slot 0 and this tag; group tags are
  // larger (see MpiCommunicator::CreateGroup).
  static constexpr int64_t kWorldSlot = 0;
  static constexpr int64_t kWorldTag = 1;

  // Collective over `world_comm` (whose ranks are the world ranks). Fails when
  // MPI cannot create the window (no RMA support between these processes); the
  // backend then runs without arrival diagnostics. Call with MpiLock() held.
  static absl::StatusOr<std::shared_ptr<ArrivalBoard>> Create(MPI_Comm world_comm);

  static constexpr absl::Duration kHeartbeatPeriod = absl::Milliseconds(100);

  ArrivalBoard(const ArrivalBoard&) = delete;
  ArrivalBoard& operator=(const ArrivalBoard&) = delete;
  // Stops the heartbeat thread. Call without holding MpiLock().
  ~ArrivalBoard();

  // A free slot of this process's table, or -1 when all are taken. Slots are
  // reused in the order they were freed (the least recently freed first), so a
  // peer that looks late still finds what the last owner left. Thread-safe.
  int64_t AcquireSlot();
  // Marks the slot's communicator as left after operation `last_op` (the
  // counter becomes -(last_op + 1), the tag stays) and frees the slot. Call with
  // MpiLock() held.
  void ReleaseSlot(int64_t slot, int64_t last_op);

  // Writes this process's slot. Call with MpiLock() held.
  void SetTag(int64_t slot, int64_t tag);
  void Announce(int64_t slot, int64_t op_number);

  // Reads the members' slots, waiting at most `grace` for answers. Takes
  // MpiLock() itself, releasing it between polls; call without holding it.
  std::vector<ArrivalReading> Read(absl::Span<const ArrivalSlot> members, absl::Duration grace);

  // The world ranks other than this one whose heartbeat did not advance over
  // `window` (a few heartbeat periods), or did not answer within `grace`.
  // Takes MpiLock() itself; call without it. Blocks for about `window`.
  std::vector<int> SilentRanks(absl::Duration window, absl::Duration grace);

 private:
  // Where to fetch `count` values: world rank and first index in its table.
  struct Target {
    int world_rank = 0;
    int64_t index = 0;
  };

  ArrivalBoard(MPI_Win window, int world_rank, int world_size);
  void Store(int64_t index, int64_t value);
  // Fetches `count` values at each target (atomic MPI_NO_OP accumulates),
  // waiting at most `grace`; `answered[i]` tells whether target i answered,
  // and its values are at [i * count, (i + 1) * count) of the result.
  std::vector<int64_t> Fetch(absl::Span<const Target> targets, int64_t count,
                             absl::Duration grace, std::vector<bool>* answered);
  void Beat();

  const MPI_Win window_;
  const int world_rank_;
  const int world_size_;
  absl::Mutex slots_mutex_;
  std::deque<int64_t> free_slots_ ABSL_GUARDED_BY(slots_mutex_);
  absl::Mutex heartbeat_mutex_;
  bool stopping_ ABSL_GUARDED_BY(heartbeat_mutex_) = false;
  std::thread heartbeat_;
};

}  // namespace trident::comm::mpi_internal

#endif  // TRIDENT_CORE_COMM_MPI_ARRIVAL_BOARD_H_
