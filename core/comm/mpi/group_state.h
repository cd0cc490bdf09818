#ifndef TRIDENT_CORE_COMM_MPI_GROUP_STATE_H_
#define TRIDENT_CORE_COMM_MPI_GROUP_STATE_H_

// The state one MPI communicator shares with its pending handles: the MPI
// communicator, the members, the arrival slots, the queue of collectives, and
// whether the group is broken. Handles keep it alive, so a handle may outlive
// its MpiCommunicator. Internal to the MPI backend.
//
// Collectives of one communicator run one after the other, in issue order (as
// on one stream): operation k+1 is handed to MPI only when operation k has
// completed. Two outstanding MPI collectives on one buffer would race (the
// second could read the buffer before the first wrote it), and a trainer issues
// exactly such sequences (max then sum of one flag, back to back). Whoever
// waits on any handle of the process drives every queue (ProgressAllQueues), so
// a rank waiting on a receive still hands its next collective to MPI.

#include <mpi.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/comm/mpi/arrival_board.h"
#include "core/comm/mpi/mpi_communicator.h"

namespace trident::comm::mpi_internal {

// One collective waiting in, or at the head of, its group's queue. All fields
// are guarded by MpiLock().
struct QueuedCollective {
  CommOp op = CommOp::kBarrier;
  int64_t op_number = 0;  // Its number among the group's collectives (from 1).
  // Hands the operation to MPI, adding to `requests`; returns an MPI error code.
  std::function<int(QueuedCollective&)> post;
  // Runs once every request completed successfully (finishing an average,
  // copying out of scratch memory).
  std::function<void()> on_success;
  // Memory the requests use that the operation owns.
  std::unique_ptr<char[]> scratch;

  std::vector<MPI_Request> requests;
  size_t completed_requests = 0;
  bool posted = false;
  bool done = false;
  absl::Status status;
};

// Frees the communicators of destroyed groups whose members have all let go of
// them (see ~GroupState). Call with MpiLock() held.
void FreeRetiredComms();

struct GroupState;

// Advances the queue of every group of this process: tests the head
// collectives and posts their successors. Returns whether any MPI request
// completed (progress, for the timeouts). Call with MpiLock() held.
bool ProgressAllQueues();

struct GroupState {
  GroupState() = default;
  GroupState(const GroupState&) = delete;
  GroupState& operator=(const GroupState&) = delete;
  // Releases this process's arrival slot and retires the MPI communicator
  // (never blocks: destroying a group is local).
  ~GroupState();

  // Carries the operations.
  MPI_Comm comm = MPI_COMM_NULL;
  // A duplicate that carries the backend's own traffic (the exchange at
  // creation, the barrier at destruction), which must never match an operation.
  MPI_Comm control_comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  std::vector<int> world_ranks;
  std::string name;
  // DescribeGroup() of the communicator, for messages.
  std::string description;
  MpiSettings settings;
  // Largest tag MPI accepts (MPI_TAG_UB).
  int max_tag = 32767;

  // Arrival counters; null when the RMA window could not be created, with the
  // reason in `board_unavailable`.
  std::shared_ptr<ArrivalBoard> board;
  std::string board_unavailable;
  int64_t my_slot = -1;
  std::vector<int64_t> member_slots;  // By group rank; -1 for untracked members.
  int64_t tag = 0;                    // The value members write into their slot's tag.

  // Collectives issued so far on this rank (the issuing thread only); the
  // number of the latest is what this rank announces on the board.
  int64_t collectives_issued = 0;

  // Appends `op` to the queue and posts it if it is at the head. Call with
  // MpiLock() held.
  void Enqueue(std::shared_ptr<QueuedCollective> op);
  // Tests the head of the queue, finishing and posting what it can. Returns
  // whether any request completed. Call with MpiLock() held.
  bool ProgressQueue();

  // Marks the group broken by `cause` (the first cause wins) and fails every
  // queued collective with it. Call with MpiLock() held.
  void Break(const absl::Status& cause);
  // OK while the group is healthy; FAILED_PRECONDITION naming `op` otherwise.
  absl::Status CheckHealthy(CommOp op);

  // Who kept collective number `op_number` from completing, as far as the
  // peers' arrival counters tell: `missing` lists the world ranks that did not
  // arrive (behind, gone, or silent), `details` says what each showed. Reads the
  // board (takes MpiLock(); call without it).
  struct Arrivals {
    std::vector<int> missing;
    std::string details;
  };
  Arrivals FindMissingArrivals(int64_t op_number);

  // "; world rank 3 shows no sign of life (...)" naming the processes of the
  // job whose heartbeat stands still (ArrivalBoard::SilentRanks), or "" when
  // all live or there is no board. A member that did not arrive may itself be
  // waiting for one of those, so a timeout appends this to name the cause.
  // Blocks for a few heartbeat periods; call without MpiLock().
  std::string SilentRanksNote();

 private:
  void FinishHead(absl::Status status);

  std::deque<std::shared_ptr<QueuedCollective>> queue_;  // Guarded by MpiLock().
  absl::Mutex mutex_;
  absl::Status broken_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace trident::comm::mpi_internal

#endif  // TRIDENT_CORE_COMM_MPI_GROUP_STATE_H_
