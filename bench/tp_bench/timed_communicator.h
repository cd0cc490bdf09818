#ifndef TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_
#define TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_

// A Communicator that forwards every call to another one and adds up the wall
// time this rank spends inside them: from issue until Wait() returns (for the
// blocking forms, which is all the tensor-parallel layers use, that is the time
// the rank cannot compute, including waiting for slower peers). For measuring
// the share of a step spent in communication; stats() counts like the inner one.

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

  std::unique_ptr<comm::CommHandle> AllReduceAsync(comm::Buffer inout, comm::ReduceOp op) override;
  std::unique_ptr<comm::CommHandle> ReduceScatterAsync(comm::ConstBuffer in, comm::Buffer out,
                                                       comm::ReduceOp op) override;
  std::unique_ptr<comm::CommHandle> AllGatherAsync(comm::ConstBuffer in, comm::Buffer out) override;
  std::unique_ptr<comm::CommHandle> BroadcastAsync(comm::Buffer buffer, int root) override;
  std::unique_ptr<comm::CommHandle> SendAsync(comm::ConstBuffer buffer, int peer, int tag) override;
  std::unique_ptr<comm::CommHandle> RecvAsync(comm::Buffer buffer, int peer, int tag) override;
  std::unique_ptr<comm::CommHandle> BarrierAsync() override;
  absl::StatusOr<std::unique_ptr<comm::Communicator>> CreateGroup(absl::Span<const int> ranks,
                                                                  absl::string_view name) override;

  // Time spent in operations whose Wait() has returned, since creation or Reset().
  absl::Duration busy() const { return busy_; }
  void Reset() {
    busy_ = absl::ZeroDuration();
    ResetStats();
  }

 private:
  // Wraps `handle` so that its Wait() adds issue-to-completion time to busy_.
  std::unique_ptr<comm::CommHandle> Timed(absl::Time issued, comm::CommOp op, int64_t bytes,
                                          std::unique_ptr<comm::CommHandle> handle);

  comm::Communicator* inner_;
  absl::Duration busy_;
};

}  // namespace trident::bench

#endif  // TRIDENT_BENCH_TP_BENCH_TIMED_COMMUNICATOR_H_
