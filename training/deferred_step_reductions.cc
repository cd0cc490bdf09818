#include "training/deferred_step_reductions.h"

#include <bit>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trident::training {

double SumReplicaLosses(absl::Span<const int64_t> loss_bits) {
  double sum = 0;
  for (const int64_t bits : loss_bits) sum += std::bit_cast<double>(bits);
  return sum;
}

DeferredStepReductions::DeferredStepReductions(comm::Communicator& replicas,
                                               comm::Communicator& workers, int lag)
    : replicas_(replicas), workers_(workers), lag_(lag) {}

void DeferredStepReductions::Start(int64_t step, double replica_loss_sum, int32_t stop_signal) {
  auto p = std::make_unique<Pending>();
  p->step = step;
  p->loss_bits = std::bit_cast<int64_t>(replica_loss_sum);
  p->gathered.resize(replicas_.size());
  p->stop_signal = stop_signal;
  p->loss = replicas_.AllGatherAsync(
      comm::ConstBuffer(&p->loss_bits, 1, DType::kInt64),
      comm::Buffer{p->gathered.data(), static_cast<int64_t>(p->gathered.size()), DType::kInt64});
  p->signal = workers_.AllReduceAsync(comm::Buffer{&p->stop_signal, 1, DType::kInt32},
                                      comm::ReduceOp::kMax);
  pending_.push_back(std::move(p));
}

absl::StatusOr<std::vector<DeferredStepReductions::Completed>> DeferredStepReductions::CompleteDue(
    int64_t step) {
  return CompleteThrough(step - lag_);
}

absl::StatusOr<std::vector<DeferredStepReductions::Completed>>
DeferredStepReductions::CompleteAll() {
  return CompleteThrough(std::numeric_limits<int64_t>::max());
}

absl::StatusOr<std::vector<DeferredStepReductions::Completed>>
DeferredStepReductions::CompleteThrough(int64_t last) {
  std::vector<Completed> completed;
  while (!pending_.empty() && pending_.front()->step <= last) {
    const std::unique_ptr<Pending> p = std::move(pending_.front());
    pending_.pop_front();
    const absl::Status loss = p->loss->Wait();
    const absl::Status signal = p->signal->Wait();
    for (const absl::Status& status : {loss, signal}) {
      if (!status.ok()) {
        return absl::Status(
            status.code(),
            absl::StrCat("step ", p->step + 1, "'s deferred reductions: ", status.message()));
      }
    }
    completed.push_back({.step = p->step,
                         .loss_sum = SumReplicaLosses(p->gathered),
                         .stop_signal = p->stop_signal});
  }
  return completed;
}

}  // namespace trident::training
