#include "core/comm/local/local_world.h"

#include <numeric>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/check.h"
#include "core/comm/local/group_state.h"
#include "core/comm/local/local_communicator.h"

namespace trident::comm {

absl::StatusOr<std::unique_ptr<LocalWorld>> LocalWorld::Create(int size, CommOptions options) {
  if (size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("local world size ", size, " must be at least 1"));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("communicator timeout ",
                                                   absl::FormatDuration(options.timeout),
                                                   " must be positive"));
  }
  std::vector<int> world_ranks(size);
  std::iota(world_ranks.begin(), world_ranks.end(), 0);
  std::string description = DescribeGroup("world", world_ranks);
  auto abort = std::make_shared<local_internal::WorldAbort>();
  auto group = std::make_shared<local_internal::GroupState>(std::move(world_ranks),
                                                            std::move(description), abort);
  abort->Register(group);
  std::vector<std::unique_ptr<Communicator>> ranks;
  ranks.reserve(size);
  for (int r = 0; r < size; ++r) {
    ranks.push_back(
        std::make_unique<local_internal::LocalCommunicator>(group, r, "world", options));
  }
  return std::unique_ptr<LocalWorld>(new LocalWorld(std::move(ranks), std::move(abort)));
}

LocalWorld::LocalWorld(std::vector<std::unique_ptr<Communicator>> ranks,
                       std::shared_ptr<local_internal::WorldAbort> abort)
    : ranks_(std::move(ranks)), abort_(std::move(abort)) {}

void LocalWorld::Abort(int failed_rank, const absl::Status& failure) {
  abort_->Abort(absl::AbortedError(
      absl::StrCat("aborted: rank ", failed_rank, " failed: ", failure.message())));
}

absl::Status LocalWorld::aborted() const { return abort_->status(); }

Communicator& LocalWorld::world(int rank) {
  TRIDENT_CHECK(rank >= 0 && rank < size()) << "rank " << rank << " of " << size();
  return *ranks_[rank];
}

absl::Status RunLocalRanks(int world_size,
                           const std::function<absl::Status(int rank, Communicator& world)>& body,
                           CommOptions options) {
  absl::StatusOr<std::unique_ptr<LocalWorld>> world = LocalWorld::Create(world_size, options);
  if (!world.ok()) return world.status();
  absl::Mutex mu;
  absl::Status first_error;
  std::vector<std::thread> threads;
  threads.reserve(world_size);
  for (int r = 0; r < world_size; ++r) {
    threads.emplace_back([&, r] {
      absl::Status status = body(r, (*world)->world(r));
      if (status.ok()) return;
      {
        absl::MutexLock lock(&mu);
        // Errors that follow from an abort come after the first error.
        if (!first_error.ok()) return;
        first_error = absl::Status(status.code(), absl::StrCat("rank ", r, ": ", status.message()));
      }
      (*world)->Abort(r, status);
    });
  }
  for (std::thread& t : threads) t.join();
  return first_error;
}

}  // namespace trident::comm
