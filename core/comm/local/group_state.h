#ifndef TRIDENT_CORE_COMM_LOCAL_GROUP_STATE_H_
#define TRIDENT_CORE_COMM_LOCAL_GROUP_STATE_H_

// The state one local group shares between its member threads: the ordered
// collectives in flight, the point-to-point mailboxes, the child-group registry,
// and whether a timeout broke the group.
//
// Collectives. Member r's k-th collective fills slot k. Slots run strictly in
// order (slot k starts once slot k-1 is done and all members have arrived at k),
// so operations on one communicator behave as if issued to one stream. A ready
// slot is cut into chunks (CollectiveOp); small ones run at once on the thread
// that made them ready, large ones are handed to the progress pool and to every
// member that waits, so a large all-reduce uses all waiting threads. Nothing
// spins: threads sleep on the group mutex's conditions.
//
// Point to point. A send never waits for its receiver: it copies straight into
// a posted receive if one is waiting, else into a message queued in the mailbox
// of (source, destination, tag). Mailboxes are FIFO, so messages with one tag
// arrive in send order whatever order the receiver asks for tags or peers.
//
// Timeouts. A member that waits longer than its timeout without progress fails
// with DEADLINE_EXCEEDED naming the operation and the members that never
// arrived (or the peer that never sent), and breaks the group: every pending
// operation of every member fails with that status, and any later one with
// FAILED_PRECONDITION. Operations whose data movement already started are left
// to finish, so no buffer is written after its Wait() returned.
//
// Aborts. Every group of one LocalWorld (the world and all groups created from
// it) shares one WorldAbort. When a rank fails, WorldAbort::Abort breaks every
// one of those groups with the ABORTED status naming that rank: waiting
// operations wake and fail with it at once, and later operations (and
// CreateGroup) fail with that same status, not with FAILED_PRECONDITION.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/local/collective_op.h"

namespace trident::comm::local_internal {

// A receive waiting for its message. Guarded by the group mutex.
struct PendingRecv {
  Buffer buffer;
  int src = 0;  // Group ranks.
  int tag = 0;
  bool claimed = false;  // A sender is copying into `buffer` right now.
  bool done = false;
  absl::Status status;
};

class GroupState;

// The abort flag of one LocalWorld, shared by every group created from it.
class WorldAbort {
 public:
  // Adds `group` to the groups Abort breaks; a group registered after Abort is
  // broken at once.
  void Register(const std::shared_ptr<GroupState>& group);
  // Sets the flag (the first cause wins) and breaks every registered group
  // with it, waking all their waiting operations. Call without holding any
  // group's mutex.
  void Abort(const absl::Status& cause);
  // OK until Abort; then the cause.
  absl::Status status() const;

 private:
  mutable absl::Mutex mu_;
  absl::Status cause_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<GroupState>> groups_ ABSL_GUARDED_BY(mu_);
};

class GroupState : public std::enable_shared_from_this<GroupState> {
 public:
  // `abort` is the world's abort flag (register the group with it).
  GroupState(std::vector<int> world_ranks, std::string description,
             std::shared_ptr<WorldAbort> abort);

  GroupState(const GroupState&) = delete;
  GroupState& operator=(const GroupState&) = delete;

  absl::Span<const int> world_ranks() const { return world_ranks_; }
  int size() const { return static_cast<int>(world_ranks_.size()); }
  // DescribeGroup() of the group, as named by its first member to join.
  const std::string& description() const { return description_; }

  // Fails every pending operation with `cause` (ABORTED) and every later one
  // with that same status; see WorldAbort.
  void Abort(const absl::Status& cause);

  // Member `rank` issues its `seq`-th collective. FAILED_PRECONDITION if the
  // group is broken (the abort's status if it was aborted).
  absl::StatusOr<std::shared_ptr<CollectiveOp>> PostCollective(int rank, int64_t seq,
                                                               const Contribution& contribution);
  // Waits for `op` (helping to run it and the ops before it), at most `timeout`
  // without progress.
  absl::Status WaitCollective(const std::shared_ptr<CollectiveOp>& op, absl::Duration timeout);

  // Eager send from group rank `src` to `dst`; complete when it returns.
  absl::Status Send(int src, int dst, int tag, ConstBuffer buffer);
  // Posts a receive; the result may already be done (a message was waiting).
  absl::StatusOr<std::shared_ptr<PendingRecv>> PostRecv(int dst, int src, int tag, Buffer buffer);
  absl::Status WaitRecv(const std::shared_ptr<PendingRecv>& recv, absl::Duration timeout);
  // Whether `recv` is done (delivered or failed): WaitRecv would not block.
  bool RecvFinished(const std::shared_ptr<PendingRecv>& recv);

  // The shared state of the `instance`-th child group with members
  // `parent_ranks` (group ranks of this group): created by the first member to
  // ask, handed to the others.
  absl::StatusOr<std::shared_ptr<GroupState>> JoinChild(const std::vector<int>& parent_ranks,
                                                        int64_t instance, absl::string_view name);

 private:
  using MailboxKey = std::tuple<int, int, int>;  // (src, dst, tag), group ranks.
  struct Message {
    std::unique_ptr<char[]> data;
    int64_t count = 0;
    DType dtype = DType::kFloat32;
  };
  struct Mailbox {
    // At most one of the two queues is non-empty.
    std::deque<Message> messages;
    std::deque<std::shared_ptr<PendingRecv>> recvs;
  };
  struct ChildEntry {
    std::shared_ptr<GroupState> state;
    int joined = 0;
  };

  // Runs chunks of `op` until none is left to claim; starts what becomes ready.
  void HelpRun(std::shared_ptr<CollectiveOp> op);
  // Runs a newly ready op now (small) or hands it to helpers (large).
  void Launch(std::shared_ptr<CollectiveOp> op);
  // Plans and starts the head slot if everyone arrived; returns it when it has
  // data to move. Completes empty or disagreeing slots on the way.
  std::shared_ptr<CollectiveOp> StartReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteLocked(const std::shared_ptr<CollectiveOp>& op, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails every pending operation with `cause` and refuses later ones.
  void BreakLocked(absl::Status cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BrokenError(CommOp op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Copies a message into a receive buffer, checking that they match. Needs no
  // lock: the receive is claimed (or not yet visible) while this runs.
  absl::Status Deliver(const PendingRecv& recv, const void* data, int64_t count,
                       DType dtype) const;
  void EraseIfEmptyLocked(const MailboxKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<int> world_ranks_;
  const std::string description_;
  const std::shared_ptr<WorldAbort> abort_;

  absl::Mutex mu_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  // Set when the world aborted: what every later operation returns.
  absl::Status aborted_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, std::shared_ptr<CollectiveOp>> ops_ ABSL_GUARDED_BY(mu_);
  int64_t head_ ABSL_GUARDED_BY(mu_) = 0;  // Earliest slot not done.
  // The running head slot while it has chunks others may claim.
  std::shared_ptr<CollectiveOp> helpable_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<MailboxKey, Mailbox> mailboxes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::vector<int>, int64_t>, ChildEntry> children_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace trident::comm::local_internal

#endif  // TRIDENT_CORE_COMM_LOCAL_GROUP_STATE_H_
