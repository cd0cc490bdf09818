#include "core/comm/local/group_state.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/comm/local/progress_pool.h"

namespace trident::comm::local_internal {
namespace {

// Messages up to this size are copied into the mailbox while holding the group
// mutex (one lock round trip); larger ones are copied outside it.
constexpr int64_t kCopyUnderLockBytes = 64 * 1024;

}  // namespace

// ---------------------------------------------------------------------------
// Aborts.

void WorldAbort::Register(const std::shared_ptr<GroupState>& group) {
  absl::Status cause;
  {
    absl::MutexLock lock(&mu_);
    if (cause_.ok()) {
      // Drop groups that are gone, so a long run creating groups stays small.
      groups_.erase(std::remove_if(groups_.begin(), groups_.end(),
                                   [](const std::weak_ptr<GroupState>& g) { return g.expired(); }),
                    groups_.end());
      groups_.push_back(group);
      return;
    }
    cause = cause_;
  }
  group->Abort(cause);
}

void WorldAbort::Abort(const absl::Status& cause) {
  std::vector<std::weak_ptr<GroupState>> groups;
  {
    absl::MutexLock lock(&mu_);
    if (!cause_.ok()) return;
    cause_ = cause;
    groups.swap(groups_);
  }
  for (const std::weak_ptr<GroupState>& weak : groups) {
    if (std::shared_ptr<GroupState> group = weak.lock()) group->Abort(cause);
  }
}

absl::Status WorldAbort::status() const {
  absl::MutexLock lock(&mu_);
  return cause_;
}

GroupState::GroupState(std::vector<int> world_ranks, std::string description,
                       std::shared_ptr<WorldAbort> abort)
    : world_ranks_(std::move(world_ranks)),
      description_(std::move(description)),
      abort_(std::move(abort)) {
  TRIDENT_CHECK(abort_ != nullptr);
}

void GroupState::Abort(const absl::Status& cause) {
  absl::MutexLock lock(&mu_);
  if (!aborted_.ok()) return;
  aborted_ = cause;
  if (broken_.ok()) {
    BreakLocked(cause);
  }
}

absl::Status GroupState::BrokenError(CommOp op) const {
  if (!aborted_.ok()) return aborted_;
  return BrokenCommunicatorError(description_, op, broken_);
}

// ---------------------------------------------------------------------------
// Collectives.

absl::StatusOr<std::shared_ptr<CollectiveOp>> GroupState::PostCollective(
    int rank, int64_t seq, const Contribution& contribution) {
  std::shared_ptr<CollectiveOp> op;
  std::shared_ptr<CollectiveOp> ready;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return BrokenError(contribution.kind);
    TRIDENT_CHECK_GE(seq, head_);
    std::shared_ptr<CollectiveOp>& slot = ops_[seq];
    if (slot == nullptr) {
      slot = std::make_shared<CollectiveOp>(seq, size());
      slot->kind = contribution.kind;
    }
    TRIDENT_CHECK(!slot->arrived[rank]) << "rank " << rank << " posted collective " << seq
                                        << " twice";
    slot->parts[rank] = contribution;
    slot->arrived[rank] = true;
    ++slot->num_arrived;
    op = slot;
    if (seq == head_ && op->all_arrived()) ready = StartReadyLocked();
  }
  Launch(std::move(ready));
  return op;
}

std::shared_ptr<CollectiveOp> GroupState::StartReadyLocked() {
  while (broken_.ok()) {
    auto it = ops_.find(head_);
    if (it == ops_.end() || !it->second->all_arrived()) return nullptr;
    std::shared_ptr<CollectiveOp> op = it->second;
    absl::Status plan = op->Plan(description_, world_ranks_);
    if (!plan.ok() || op->num_chunks() == 0) {
      CompleteLocked(op, std::move(plan));
      continue;
    }
    op->state = CollectiveOp::State::kRunning;
    if (!op->run_inline()) helpable_ = op;
    return op;
  }
  return nullptr;
}

void GroupState::CompleteLocked(const std::shared_ptr<CollectiveOp>& op, absl::Status status) {
  TRIDENT_CHECK_EQ(op->seq, head_);
  op->state = CollectiveOp::State::kDone;
  op->status = std::move(status);
  if (helpable_ == op) helpable_ = nullptr;
  ops_.erase(op->seq);
  ++head_;
}

void GroupState::Launch(std::shared_ptr<CollectiveOp> op) {
  if (op == nullptr) return;
  if (op->run_inline()) {
    HelpRun(std::move(op));
  } else {
    ProgressPool::Get().Submit(
        [self = shared_from_this(), op = std::move(op)] { self->HelpRun(op); });
  }
}

void GroupState::HelpRun(std::shared_ptr<CollectiveOp> op) {
  while (op != nullptr) {
    std::shared_ptr<CollectiveOp> next;
    {
      absl::MutexLock lock(&mu_);
      while (op->next_chunk < op->num_chunks()) {
        const int64_t chunk = op->next_chunk++;
        mu_.Unlock();
        op->RunChunk(chunk);
        mu_.Lock();
        if (++op->chunks_done == op->num_chunks()) {
          CompleteLocked(op, absl::OkStatus());
          next = StartReadyLocked();
        }
      }
    }
    // Small successors run here; large ones go to the helpers.
    if (next != nullptr && !next->run_inline()) {
      Launch(std::move(next));
      next = nullptr;
    }
    op = std::move(next);
  }
}

absl::Status GroupState::WaitCollective(const std::shared_ptr<CollectiveOp>& op,
                                        absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (op->state != CollectiveOp::State::kDone) {
    if (helpable_ != nullptr && helpable_->next_chunk < helpable_->num_chunks()) {
      std::shared_ptr<CollectiveOp> work = helpable_;
      mu_.Unlock();
      HelpRun(std::move(work));
      mu_.Lock();
      deadline = absl::Now() + timeout;  // Helping is progress, not waiting.
      continue;
    }
    const int64_t head_before = head_;
    const auto progress = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return op->state == CollectiveOp::State::kDone || head_ != head_before ||
             (helpable_ != nullptr && helpable_->next_chunk < helpable_->num_chunks());
    };
    if (mu_.AwaitWithDeadline(absl::Condition(&progress), deadline)) {
      if (head_ != head_before) deadline = absl::Now() + timeout;
      continue;
    }
    // No progress for `timeout`: blame the slot everyone is stuck behind.
    auto it = ops_.find(head_);
    TRIDENT_CHECK(it != ops_.end()) << "waiting on slot " << op->seq << " with no head slot";
    const CollectiveOp& stuck = *it->second;
    if (stuck.state == CollectiveOp::State::kGathering) {
      BreakLocked(DeadlineExceededError(description_, stuck.kind, timeout,
                                        stuck.MissingWorldRanks(world_ranks_)));
    } else {
      deadline = absl::Now() + timeout;  // Its data is moving on other threads.
    }
  }
  return op->status;
}

void GroupState::BreakLocked(absl::Status cause) {
  if (!broken_.ok()) return;
  broken_ = cause;
  // Slots still gathering never move data: fail them. A running slot finishes
  // normally (its buffers are being written) and completes on its own.
  for (auto it = ops_.begin(); it != ops_.end();) {
    CollectiveOp& op = *it->second;
    if (op.state == CollectiveOp::State::kGathering) {
      op.state = CollectiveOp::State::kDone;
      op.status = cause;
      ops_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto& [key, box] : mailboxes_) {
    for (const std::shared_ptr<PendingRecv>& recv : box.recvs) {
      recv->done = true;
      recv->status = cause;
    }
    box.recvs.clear();
  }
}

// ---------------------------------------------------------------------------
// Point to point.

absl::Status GroupState::Deliver(const PendingRecv& recv, const void* data, int64_t count,
                                 DType dtype) const {
  if (count != recv.buffer.count || dtype != recv.buffer.dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "recv on ", description_, " from world rank ", world_ranks_[recv.src], " (tag ",
        recv.tag, "): the buffer holds ", recv.buffer.count, " x ", DTypeName(recv.buffer.dtype),
        " but the message has ", count, " x ", DTypeName(dtype)));
  }
  if (count > 0) std::memcpy(recv.buffer.data, data, count * DTypeSize(dtype));
  return absl::OkStatus();
}

void GroupState::EraseIfEmptyLocked(const MailboxKey& key) {
  auto it = mailboxes_.find(key);
  if (it != mailboxes_.end() && it->second.messages.empty() && it->second.recvs.empty()) {
    mailboxes_.erase(it);
  }
}

absl::Status GroupState::Send(int src, int dst, int tag, ConstBuffer buffer) {
  const MailboxKey key(src, dst, tag);
  Message message;
  bool copied = false;
  mu_.Lock();
  while (true) {
    if (!broken_.ok()) {
      absl::Status error = BrokenError(CommOp::kSend);
      mu_.Unlock();
      return error;
    }
    Mailbox& box = mailboxes_[key];
    if (!box.recvs.empty()) {
      // A receive is waiting: claim it and copy straight into its buffer.
      std::shared_ptr<PendingRecv> recv = std::move(box.recvs.front());
      box.recvs.pop_front();
      recv->claimed = true;
      EraseIfEmptyLocked(key);
      mu_.Unlock();
      absl::Status delivered = copied ? Deliver(*recv, message.data.get(), message.count,
                                                message.dtype)
                                      : Deliver(*recv, buffer.data, buffer.count, buffer.dtype);
      mu_.Lock();
      recv->done = true;
      recv->status = std::move(delivered);
      mu_.Unlock();
      return absl::OkStatus();
    }
    const int64_t bytes = buffer.bytes();
    if (!copied) {
      // Small messages are copied here; large ones outside the lock, then we
      // look again for a receive posted meanwhile.
      const bool under_lock = bytes <= kCopyUnderLockBytes;
      if (!under_lock) mu_.Unlock();
      message.data.reset(new char[std::max<int64_t>(bytes, 1)]);
      if (bytes > 0) std::memcpy(message.data.get(), buffer.data, bytes);
      message.count = buffer.count;
      message.dtype = buffer.dtype;
      copied = true;
      if (!under_lock) {
        mu_.Lock();
        continue;
      }
    }
    box.messages.push_back(std::move(message));
    mu_.Unlock();
    return absl::OkStatus();
  }
}

absl::StatusOr<std::shared_ptr<PendingRecv>> GroupState::PostRecv(int dst, int src, int tag,
                                                                   Buffer buffer) {
  auto recv = std::make_shared<PendingRecv>();
  recv->buffer = buffer;
  recv->src = src;
  recv->tag = tag;
  const MailboxKey key(src, dst, tag);
  Message message;
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return BrokenError(CommOp::kRecv);
    Mailbox& box = mailboxes_[key];
    if (box.messages.empty()) {
      box.recvs.push_back(recv);
      return recv;
    }
    message = std::move(box.messages.front());
    box.messages.pop_front();
    EraseIfEmptyLocked(key);
  }
  // The message was already here: the receive completes now. Nobody else can
  // see `recv`, so it needs no lock.
  recv->status = Deliver(*recv, message.data.get(), message.count, message.dtype);
  recv->done = true;
  return recv;
}

absl::Status GroupState::WaitRecv(const std::shared_ptr<PendingRecv>& recv,
                                  absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto done = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return recv->done; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&done), absl::Now() + timeout)) {
    if (recv->claimed) {
      mu_.Await(absl::Condition(&done));  // The sender is copying: nearly done.
    } else {
      // Still queued: the peer never sent. BreakLocked fails this receive too.
      BreakLocked(DeadlineExceededError(description_, CommOp::kRecv, timeout,
                                        {world_ranks_[recv->src]}));
      TRIDENT_CHECK(recv->done);
    }
  }
  return recv->status;
}

bool GroupState::RecvFinished(const std::shared_ptr<PendingRecv>& recv) {
  absl::MutexLock lock(&mu_);
  return recv->done;
}

// ---------------------------------------------------------------------------
// Child groups.

absl::StatusOr<std::shared_ptr<GroupState>> GroupState::JoinChild(
    const std::vector<int>& parent_ranks, int64_t instance, absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (!aborted_.ok()) return aborted_;
  if (!broken_.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("CreateGroup on ", description_,
                     " refused: the communicator is broken by an earlier failure (",
                     broken_.ToString(), ")"));
  }
  auto key = std::make_pair(parent_ranks, instance);
  ChildEntry& entry = children_[key];
  if (entry.state == nullptr) {
    std::vector<int> child_world_ranks;
    child_world_ranks.reserve(parent_ranks.size());
    for (int r : parent_ranks) child_world_ranks.push_back(world_ranks_[r]);
    std::string description = DescribeGroup(name, child_world_ranks);
    entry.state =
        std::make_shared<GroupState>(std::move(child_world_ranks), std::move(description), abort_);
    abort_->Register(entry.state);
  }
  std::shared_ptr<GroupState> state = entry.state;
  // Once every member has joined, nobody will ask again.
  if (++entry.joined == static_cast<int>(parent_ranks.size())) children_.erase(key);
  return state;
}

}  // namespace trident::comm::local_internal
