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
    absl::Time issued, std::unique_ptr<comm::CommHandle> handle) {
  return std::make_unique<TimedHandle>(issued, &busy_, std::move(handle));
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoAllReduce(
    comm::Buffer buffer, comm::ReduceOp op) {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->AllReduceAsync(buffer, op));
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoReduceScatter(
    comm::ConstBuffer in, comm::Buffer out, comm::ReduceOp op) {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->ReduceScatterAsync(in, out, op));
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoAllGather(
    comm::ConstBuffer in, comm::Buffer out) {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->AllGatherAsync(in, out));
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoBroadcast(
    comm::Buffer buffer, int root) {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->BroadcastAsync(buffer, root));
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoBarrier() {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->BarrierAsync());
}

absl::StatusOr<std::unique_ptr<comm::CommHandle>> TimedCommunicator::DoSendRecv(
    absl::Span<const comm::P2POp> ops) {
  const absl::Time now = absl::Now();
  return Timed(now, inner_->BatchSendRecvAsync(ops));
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> TimedCommunicator::DoCreateGroup(
    absl::Span<const int> ranks, absl::string_view name) {
  return inner_->CreateGroup(ranks, name);
}

}  // namespace trident::bench
