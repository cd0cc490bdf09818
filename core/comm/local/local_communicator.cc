#include "core/comm/local/local_communicator.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace trident::comm::local_internal {
namespace {

// Waits for a collective slot. Destroying it unwaited waits (interface rule).
class CollectiveHandle final : public CommHandle {
 public:
  CollectiveHandle(std::shared_ptr<GroupState> group, std::shared_ptr<CollectiveOp> op,
                   absl::Duration timeout)
      : group_(std::move(group)), op_(std::move(op)), timeout_(timeout) {}
  ~CollectiveHandle() override { Wait().IgnoreError(); }

  absl::Status Wait() override {
    if (!waited_) {
      status_ = group_->WaitCollective(op_, timeout_);
      waited_ = true;
    }
    return status_;
  }

 private:
  std::shared_ptr<GroupState> group_;
  std::shared_ptr<CollectiveOp> op_;
  absl::Duration timeout_;
  bool waited_ = false;
  absl::Status status_;
};

class RecvHandle final : public CommHandle {
 public:
  RecvHandle(std::shared_ptr<GroupState> group, std::shared_ptr<PendingRecv> recv,
             absl::Duration timeout)
      : group_(std::move(group)), recv_(std::move(recv)), timeout_(timeout) {}
  ~RecvHandle() override { Wait().IgnoreError(); }

  absl::Status Wait() override {
    if (!waited_) {
      status_ = group_->WaitRecv(recv_, timeout_);
      waited_ = true;
    }
    return status_;
  }

 private:
  std::shared_ptr<GroupState> group_;
  std::shared_ptr<PendingRecv> recv_;
  absl::Duration timeout_;
  bool waited_ = false;
  absl::Status status_;
};

}  // namespace

LocalCommunicator::LocalCommunicator(std::shared_ptr<GroupState> group, int rank,
                                     std::string name, CommOptions options)
    : Communicator(options), group_(std::move(group)), rank_(rank), name_(std::move(name)) {
  TRIDENT_CHECK(rank_ >= 0 && rank_ < group_->size()) << rank_;
}

std::unique_ptr<CommHandle> LocalCommunicator::Collective(const Contribution& contribution,
                                                          int64_t payload_bytes) {
  absl::StatusOr<std::shared_ptr<CollectiveOp>> op =
      group_->PostCollective(rank_, next_seq_, contribution);
  if (!op.ok()) return CompletedHandle(op.status());
  ++next_seq_;
  mutable_stats().Record(contribution.kind, payload_bytes);
  return std::make_unique<CollectiveHandle>(group_, *std::move(op), timeout());
}

std::unique_ptr<CommHandle> LocalCommunicator::AllReduceAsync(Buffer inout, ReduceOp op) {
  if (absl::Status s = ValidateBuffer(*this, CommOp::kAllReduce, "buffer", inout); !s.ok()) {
    return CompletedHandle(s);
  }
  Contribution c;
  c.kind = CommOp::kAllReduce;
  c.in = inout.data;
  c.out = inout.data;
  c.in_count = c.out_count = inout.count;
  c.dtype = inout.dtype;
  c.reduce_op = op;
  return Collective(c, inout.bytes());
}

std::unique_ptr<CommHandle> LocalCommunicator::ReduceScatterAsync(ConstBuffer in, Buffer out,
                                                                  ReduceOp op) {
  if (absl::Status s = ValidateReduceScatter(*this, in, out); !s.ok()) return CompletedHandle(s);
  Contribution c;
  c.kind = CommOp::kReduceScatter;
  c.in = in.data;
  c.out = out.data;
  c.in_count = in.count;
  c.out_count = out.count;
  c.dtype = in.dtype;
  c.reduce_op = op;
  return Collective(c, in.bytes());
}

std::unique_ptr<CommHandle> LocalCommunicator::AllGatherAsync(ConstBuffer in, Buffer out) {
  if (absl::Status s = ValidateAllGather(*this, in, out); !s.ok()) return CompletedHandle(s);
  Contribution c;
  c.kind = CommOp::kAllGather;
  c.in = in.data;
  c.out = out.data;
  c.in_count = in.count;
  c.out_count = out.count;
  c.dtype = in.dtype;
  return Collective(c, out.bytes());
}

std::unique_ptr<CommHandle> LocalCommunicator::BroadcastAsync(Buffer buffer, int root) {
  if (absl::Status s = ValidateBuffer(*this, CommOp::kBroadcast, "buffer", buffer); !s.ok()) {
    return CompletedHandle(s);
  }
  if (absl::Status s = ValidateRoot(*this, CommOp::kBroadcast, root); !s.ok()) {
    return CompletedHandle(s);
  }
  Contribution c;
  c.kind = CommOp::kBroadcast;
  c.in = buffer.data;
  c.out = buffer.data;
  c.in_count = c.out_count = buffer.count;
  c.dtype = buffer.dtype;
  c.root = root;
  return Collective(c, buffer.bytes());
}

std::unique_ptr<CommHandle> LocalCommunicator::BarrierAsync() {
  Contribution c;
  c.kind = CommOp::kBarrier;
  return Collective(c, 0);
}

std::unique_ptr<CommHandle> LocalCommunicator::SendAsync(ConstBuffer buffer, int peer, int tag) {
  if (absl::Status s = ValidateBuffer(*this, CommOp::kSend, "buffer", buffer); !s.ok()) {
    return CompletedHandle(s);
  }
  if (absl::Status s = ValidatePeer(*this, CommOp::kSend, peer, tag); !s.ok()) {
    return CompletedHandle(s);
  }
  absl::Status sent = group_->Send(rank_, peer, tag, buffer);
  if (sent.ok()) mutable_stats().Record(CommOp::kSend, buffer.bytes());
  return CompletedHandle(std::move(sent));
}

std::unique_ptr<CommHandle> LocalCommunicator::RecvAsync(Buffer buffer, int peer, int tag) {
  if (absl::Status s = ValidateBuffer(*this, CommOp::kRecv, "buffer", buffer); !s.ok()) {
    return CompletedHandle(s);
  }
  if (absl::Status s = ValidatePeer(*this, CommOp::kRecv, peer, tag); !s.ok()) {
    return CompletedHandle(s);
  }
  absl::StatusOr<std::shared_ptr<PendingRecv>> recv = group_->PostRecv(rank_, peer, tag, buffer);
  if (!recv.ok()) return CompletedHandle(recv.status());
  mutable_stats().Record(CommOp::kRecv, buffer.bytes());
  return std::make_unique<RecvHandle>(group_, *std::move(recv), timeout());
}

absl::StatusOr<std::unique_ptr<Communicator>> LocalCommunicator::CreateGroup(
    absl::Span<const int> ranks, absl::string_view name) {
  if (absl::Status s = ValidateGroupRanks(*this, ranks); !s.ok()) return s;
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
