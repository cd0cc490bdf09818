#ifndef TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_
#define TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_

// A Communicator that forwards every call to another one and adds up the wall
// time this rank spends inside them: from issue until Wait() returns (for the
// blocking forms, which is all the tensor-parallel layers use, that is the time
// the rank cannot compute, including waiting for slower peers). For measuring
// the share of a step spent in communication. stats() counts every call handed
// to the inner communicator (the base class counts; a call the inner one then
// refuses, e.g. on a broken group, is counted here but not there).

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "core/comm/communicator.h"

namespace trident::bench {

class TimedCommunicator : public comm::Communicator {
 public:
  // `inner` is not owned and must outlive this object.
  explicit TimedCommunicator(comm::Communicator* inner);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  absl::Span<const int> world_ranks() const override { return inner_->world_ranks(); }
  const std::string& name() const override { return inner_->name(); }
  absl::string_view backend() const override { return inner_->backend(); }

  // Time spent in operations whose Wait() has returned, since creation or Reset().
  absl::Duration busy() const { return busy_; }
  void Reset() {
    busy_ = absl::ZeroDuration();
    ResetStats();
  }

 private:
  // Each forwards the (already checked) call to the inner communicator's
  // public method and times it.
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoAllReduce(comm::Buffer buffer,
                                                                comm::ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoReduceScatter(comm::ConstBuffer in,
                                                                    comm::Buffer out,
                                                                    comm::ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoAllGather(comm::ConstBuffer in,
                                                                comm::Buffer out) override;
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoBroadcast(comm::Buffer buffer,
                                                                int root) override;
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoBarrier() override;
  absl::StatusOr<std::unique_ptr<comm::CommHandle>> DoSendRecv(
      absl::Span<const comm::P2POp> ops) override;
  absl::StatusOr<std::unique_ptr<comm::Communicator>> DoCreateGroup(
      absl::Span<const int> ranks, absl::string_view name) override;

  // Wraps `handle` so that its Wait() adds issue-to-completion time to busy_.
  std::unique_ptr<comm::CommHandle> Timed(absl::Time issued,
                                          std::unique_ptr<comm::CommHandle> handle);

  comm::Communicator* inner_;
  absl::Duration busy_;
};

}  // namespace trident::bench

#endif  // TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_
