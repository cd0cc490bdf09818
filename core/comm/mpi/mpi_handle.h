#ifndef TRIDENT_CORE_COMM_MPI_MPI_HANDLE_H_
#define TRIDENT_CORE_COMM_MPI_MPI_HANDLE_H_

// The pending forms of the MPI backend's operations and the polling loop they
// wait in. Internal to the MPI backend.

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/mpi/group_state.h"

namespace trident::comm::mpi_internal {

// Paces a polling loop: yields the CPU for the first milliseconds of a wait
// (MPI's nonblocking collectives only advance inside MPI calls, so a rank
// that polls late slows its peers), then sleeps with growing intervals so that
// a long wait leaves the core to ranks with work.
class PollPacer {
 public:
  PollPacer() : start_(absl::Now()) {}
  void Pause();
  absl::Duration waited() const { return absl::Now() - start_; }

 private:
  absl::Time start_;
  absl::Duration sleep_ = absl::ZeroDuration();
};

// Polls `requests` (MPI_Test, under MpiLock(), driving every group's queue on
// the way) until all complete, one fails, or `timeout` passes without any of
// them completing. Completed entries become MPI_REQUEST_NULL; their statuses
// land in `statuses` (same size as `requests`) when given. Returns OK,
// DEADLINE_EXCEEDED (with no message) on timeout, or the MPI error of a failed
// request, naming `what`.
absl::Status PollRequests(absl::Span<MPI_Request> requests, absl::Span<MPI_Status> statuses,
                          absl::Duration timeout, absl::string_view what);

// Bounds an MPI call that blocks and cannot be abandoned (the collective
// creation of a communicator): if the call has not returned within `timeout`,
// a watchdog thread prints "<program>: rank R: DEADLINE_EXCEEDED: <what> did
// not complete within <timeout> ..." to stderr and ends the job (MpiAbortJob),
// because the calling thread would wait forever for a member that never comes
// (stopped, failed, or creating another group). Destroying it disarms it.
class BlockingCallWatchdog {
 public:
  BlockingCallWatchdog(absl::Duration timeout, int world_rank, std::string what);
  BlockingCallWatchdog(const BlockingCallWatchdog&) = delete;
  BlockingCallWatchdog& operator=(const BlockingCallWatchdog&) = delete;
  ~BlockingCallWatchdog();

 private:
  absl::Mutex mutex_;
  bool returned_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// A collective: waits until its QueuedCollective is done, driving the queues.
class CollectiveHandle final : public CommHandle {
 public:
  CollectiveHandle(std::shared_ptr<GroupState> group, std::shared_ptr<QueuedCollective> op,
                   absl::Duration timeout);
  ~CollectiveHandle() override;
  absl::Status Wait() override;
  // One pass of MPI_Test over the process's queues (never blocks).
  void Progress() override;

 private:
  absl::Status TimeoutError();

  std::shared_ptr<GroupState> group_;
  std::shared_ptr<QueuedCollective> op_;
  const absl::Duration timeout_;
  bool finished_ = false;
  absl::Status status_;
};

// Sends and receives posted together: one op (SendAsync, RecvAsync) or a
// batch (BatchSendRecvAsync). Point-to-point messages are not ordered with
// collectives, so they are posted at once, not queued. Wait() polls every
// request of every op in one loop; its status is the first failure in op
// order, and a timeout names the peers of the ops still pending.
class PointToPointHandle final : public CommHandle {
 public:
  PointToPointHandle(std::shared_ptr<GroupState> group, absl::Duration timeout);
  ~PointToPointHandle() override;

  // Starts the next op (a send or recv with `peer` and `tag`); the requests
  // added next are its pieces.
  void BeginOp(CommOp op, int peer, int tag);
  // Takes a posted request of the current op. For a receive,
  // `expected_count` is how many elements (of `datatype`) it must deliver.
  void AddRequest(MPI_Request request, int64_t expected_count = -1,
                  MPI_Datatype datatype = MPI_DATATYPE_NULL);
  // Gives up before Wait() (posting failed): the posted requests are left to
  // MPI and destroying the handle does not wait for them.
  void Abandon();

  absl::Status Wait() override;
  // One MPI_Test pass over the pending requests (never blocks).
  bool Test() override;

 private:
  struct Op {
    CommOp op;
    int peer;
    int tag;
    size_t first_request;  // Its requests are [first_request, end_request).
    size_t end_request;
  };

  std::string Describe(const Op& op) const;
  // What MPI errors name: the op, or the batch.
  std::string DescribeAll() const;
  absl::Status TimeoutError(absl::Span<MPI_Status> statuses);
  absl::Status CheckReceivedCounts(const Op& op, absl::Span<MPI_Status> statuses);
  // With every request complete: the receives' counts, into status_.
  void Finish();

  std::shared_ptr<GroupState> group_;
  const absl::Duration timeout_;
  std::vector<Op> ops_;
  std::vector<MPI_Request> requests_;
  std::vector<int64_t> expected_counts_;
  std::vector<MPI_Datatype> datatypes_;
  // Requests [0, first_pending_) completed (Test found them); their statuses.
  size_t first_pending_ = 0;
  std::vector<MPI_Status> statuses_;
  bool finished_ = false;
  absl::Status status_;
};

}  // namespace trident::comm::mpi_internal

#endif  // TRIDENT_CORE_COMM_MPI_MPI_HANDLE_H_
