#include "bench/tp_bench/timed_communicator.h"

#include <utility>

namespace trident::bench {
namespace {

class TimedHandle : public comm::CommHandle {
 public:
  TimedHandle(absl::Time issued, absl::Duration* busy, std::unique_ptr<comm::CommHandle> inner)
      : issued_(issued), busy_(busy), inner_(std::move(inner)) {}
  ~TimedHandle() override {
    if (!waited_) Wait().IgnoreError();
  }

  absl::Status Wait() override {
    absl::Status status = inner_->Wait();
    if (!waited_) {
      waited_ = true;
      *busy_ += absl::Now() - issued_;
    }
    return status;
  }

 private:
  absl::Time issued_;
  absl::Duration* busy_;
  std::unique_ptr<comm::CommHandle> inner_;
  bool waited_ = false;
};

}  // namespace

TimedCommunicator::TimedCommunicator(comm::Communicator* inner)
    : comm::Communicator(inner->options()), inner_(inner) {}

std::unique_ptr<comm::CommHandle> TimedCommunicator::Timed(
    absl::Time issued, comm::CommOp op, int64_t bytes, std::unique_ptr<comm::CommHandle> handle) {
  mutable_stats().Record(op, bytes);
  return std::make_unique<TimedHandle>(issued, &busy_, std::move(handle));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::AllReduceAsync(comm::Buffer inout,
                                                                    comm::ReduceOp op) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kAllReduce, inout.bytes(), inner_->AllReduceAsync(inout, op));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::ReduceScatterAsync(comm::ConstBuffer in,
                                                                        comm::Buffer out,
                                                                        comm::ReduceOp op) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kReduceScatter, in.bytes(),
               inner_->ReduceScatterAsync(in, out, op));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::AllGatherAsync(comm::ConstBuffer in,
                                                                    comm::Buffer out) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kAllGather, out.bytes(), inner_->AllGatherAsync(in, out));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::BroadcastAsync(comm::Buffer buffer, int root) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kBroadcast, buffer.bytes(), inner_->BroadcastAsync(buffer, root));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::SendAsync(comm::ConstBuffer buffer, int peer,
                                                               int tag) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kSend, buffer.bytes(), inner_->SendAsync(buffer, peer, tag));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::RecvAsync(comm::Buffer buffer, int peer,
                                                               int tag) {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kRecv, buffer.bytes(), inner_->RecvAsync(buffer, peer, tag));
}

std::unique_ptr<comm::CommHandle> TimedCommunicator::BarrierAsync() {
  const absl::Time now = absl::Now();
  return Timed(now, comm::CommOp::kBarrier, 0, inner_->BarrierAsync());
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> TimedCommunicator::CreateGroup(
    absl::Span<const int> ranks, absl::string_view name) {
  return inner_->CreateGroup(ranks, name);
}

}  // namespace trident::bench
