#include "core/comm/local/local_communicator.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "core/check.h"

namespace trident::comm::local_internal {
namespace {

// Every pending local operation, collective or point to point: Wait() runs
// `wait` (which blocks in the GroupState) once and keeps its status. Destroying
// it unwaited waits (interface rule).
class LocalHandle final : public CommHandle {
 public:
  // `finished` (optional) says without blocking whether `wait` would return
  // at once; without it Test() waits.
  explicit LocalHandle(std::function<absl::Status()> wait,
                       std::function<bool()> finished = nullptr)
      : wait_(std::move(wait)), finished_(std::move(finished)) {}
  ~LocalHandle() override { Wait().IgnoreError(); }

  bool Test() override {
    if (wait_ != nullptr && finished_ != nullptr && !finished_()) return false;
    Wait().IgnoreError();
    return true;
  }

  absl::Status Wait() override {
    if (wait_ != nullptr) {
      status_ = wait_();
      wait_ = nullptr;
    }
    return status_;
  }

 private:
  std::function<absl::Status()> wait_;
  std::function<bool()> finished_;
  absl::Status status_;
};

// One op of a DoSendRecv batch: a send's final status, or a posted receive.
struct StartedP2P {
  absl::Status status;
  std::shared_ptr<PendingRecv> recv;
};

}  // namespace

LocalCommunicator::LocalCommunicator(std::shared_ptr<GroupState> group, int rank,
                                     std::string name, CommOptions options)
    : Communicator(options), group_(std::move(group)), rank_(rank), name_(std::move(name)) {
  TRIDENT_CHECK(rank_ >= 0 && rank_ < group_->size()) << rank_;
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::Collective(
    const Contribution& contribution) {
  absl::StatusOr<std::shared_ptr<CollectiveOp>> op =
      group_->PostCollective(rank_, next_seq_, contribution);
  if (!op.ok()) return op.status();
  ++next_seq_;
  return std::make_unique<LocalHandle>([group = group_, op = *std::move(op), timeout = timeout()] {
    return group->WaitCollective(op, timeout);
  });
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoAllReduce(Buffer buffer,
                                                                           ReduceOp op) {
  Contribution c;
  c.kind = CommOp::kAllReduce;
  c.in = buffer.data;
  c.out = buffer.data;
  c.in_count = c.out_count = buffer.count;
  c.dtype = buffer.dtype;
  c.reduce_op = op;
  return Collective(c);
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoReduceScatter(ConstBuffer in,
                                                                               Buffer out,
                                                                               ReduceOp op) {
  Contribution c;
  c.kind = CommOp::kReduceScatter;
  c.in = in.data;
  c.out = out.data;
  c.in_count = in.count;
  c.out_count = out.count;
  c.dtype = in.dtype;
  c.reduce_op = op;
  return Collective(c);
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoAllGather(ConstBuffer in,
                                                                           Buffer out) {
  Contribution c;
  c.kind = CommOp::kAllGather;
  c.in = in.data;
  c.out = out.data;
  c.in_count = in.count;
  c.out_count = out.count;
  c.dtype = in.dtype;
  return Collective(c);
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoBroadcast(Buffer buffer,
                                                                           int root) {
  Contribution c;
  c.kind = CommOp::kBroadcast;
  c.in = buffer.data;
  c.out = buffer.data;
  c.in_count = c.out_count = buffer.count;
  c.dtype = buffer.dtype;
  c.root = root;
  return Collective(c);
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoBarrier() {
  Contribution c;
  c.kind = CommOp::kBarrier;
  return Collective(c);
}

absl::StatusOr<std::unique_ptr<CommHandle>> LocalCommunicator::DoSendRecv(
    absl::Span<const P2POp> ops) {
  std::vector<StartedP2P> started(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const P2POp& op = ops[i];
    if (op.op == CommOp::kSend) {
      started[i].status = group_->Send(rank_, op.peer, op.tag, op.send_buffer);
    } else {
      absl::StatusOr<std::shared_ptr<PendingRecv>> recv =
          group_->PostRecv(rank_, op.peer, op.tag, op.recv_buffer);
      if (recv.ok()) {
        started[i].recv = *std::move(recv);
      } else {
        started[i].status = recv.status();
      }
    }
    // Only a broken group refuses an op: if it refused the first, nothing
    // started. Later refusals (another member broke the group meanwhile) are
    // the batch's outcome.
    if (i == 0 && !started[0].status.ok()) return started[0].status;
  }
  if (ops.size() == 1 && started[0].recv == nullptr) {
    return CompletedHandle(std::move(started[0].status));  // A send: already done.
  }
  std::vector<std::shared_ptr<PendingRecv>> recvs;
  for (const StartedP2P& op : started) {
    if (op.recv != nullptr) recvs.push_back(op.recv);
  }
  auto finished = [group = group_, recvs = std::move(recvs)] {
    for (const std::shared_ptr<PendingRecv>& recv : recvs) {
      if (!group->RecvFinished(recv)) return false;
    }
    return true;
  };
  return std::make_unique<LocalHandle>(
      [group = group_, started = std::move(started), timeout = timeout()]() mutable {
        // Every receive is waited, so none writes its buffer after Wait().
        absl::Status first_error;
        for (StartedP2P& op : started) {
          if (op.recv != nullptr) op.status = group->WaitRecv(op.recv, timeout);
          first_error.Update(op.status);
        }
        return first_error;
      },
      std::move(finished));
}

absl::StatusOr<std::unique_ptr<Communicator>> LocalCommunicator::DoCreateGroup(
    absl::Span<const int> ranks, absl::string_view name) {
  std::vector<int> members(ranks.begin(), ranks.end());
  const int64_t instance = created_[members]++;
  absl::StatusOr<std::shared_ptr<GroupState>> child = group_->JoinChild(members, instance, name);
  if (!child.ok()) return child.status();
  const int child_rank =
      static_cast<int>(std::find(members.begin(), members.end(), rank_) - members.begin());
  return std::unique_ptr<Communicator>(
      new LocalCommunicator(*std::move(child), child_rank, std::string(name), options()));
}

}  // namespace trident::comm::local_internal
