#ifndef TRIDENT_CORE_COMM_LOCAL_LOCAL_WORLD_H_
#define TRIDENT_CORE_COMM_LOCAL_LOCAL_WORLD_H_

// The `local` communicator backend: the ranks of a job are threads of one
// process and exchange data through shared memory. It is the default backend of
// single-machine runs and of the tests.
//
// Behaviour beyond the Communicator contract (core/comm/communicator.h):
// - Deterministic: every reduction combines the members' values in group-rank
//   order (rank 0 op rank 1 op ...), so results are bitwise identical whatever
//   the thread timing. bf16/fp16 accumulate in float over all members and are
//   rounded once; kAvg divides that float sum (integers: truncating division).
// - Large collectives are cut into element ranges that every waiting member
//   (and a few process-wide helper threads) reduce in parallel; small ones run
//   on the thread of the last member to arrive. Async collectives on one
//   communicator execute in issue order; different communicators overlap.
// - Sends are eager: a send copies into the receiver's posted buffer or into a
//   FIFO mailbox keyed by (source, destination, tag) and completes at once, so
//   no order of sends and receives can deadlock. A receive completes when its
//   message has been copied; a message whose count or dtype differs from the
//   receive buffer fails the receive with INVALID_ARGUMENT.
// - Timeouts: a member that waits longer than timeout() without progress fails
//   with DEADLINE_EXCEEDED naming the group, the operation and the world ranks
//   that did not arrive (DeadlineExceededError). This breaks the group for all
//   members: their pending operations fail with the same status, later ones
//   (and CreateGroup) with FAILED_PRECONDITION.
// - Aborts: LocalWorld::Abort (which RunLocalRanks calls when a rank fails)
//   cancels every waiting operation of every communicator of the world, groups
//   created from it included: blocked collectives, receives and barriers
//   return at once with ABORTED "aborted: rank R failed: <its message>", and
//   every later operation and CreateGroup fails at once with that status.
//   Nobody waits for a timeout when the cause is known.
// - Members disagreeing on a collective (kind, count, dtype, reduce op, root)
//   all fail it with INVALID_ARGUMENT listing who passed what; the group stays
//   usable. Locally invalid arguments fail at once without a rendezvous.
// - Stats count every operation that passed local validation and was issued.
// - CreateGroup does not wait for the other members.

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/comm/communicator.h"

namespace trident::comm {

namespace local_internal {
class WorldAbort;
}  // namespace local_internal

// The shared world of `size` thread ranks. Each rank's thread uses its own
// world communicator (named "world"); group communicators it creates keep the
// shared state alive, so they may outlive the LocalWorld.
class LocalWorld {
 public:
  // INVALID_ARGUMENT if `size` < 1 or the timeout is not positive.
  static absl::StatusOr<std::unique_ptr<LocalWorld>> Create(int size, CommOptions options = {});

  int size() const { return static_cast<int>(ranks_.size()); }
  // Rank `rank`'s world communicator, for that rank's thread only.
  Communicator& world(int rank);

  // Cancels the whole world because rank `failed_rank` failed with `failure`:
  // every operation of every communicator of this world (groups included)
  // that waits, or comes later, fails with ABORTED "aborted: rank R failed:
  // <failure's message>". Only the first abort counts. Thread-safe.
  void Abort(int failed_rank, const absl::Status& failure);
  // OK, or the ABORTED status of the first Abort.
  absl::Status aborted() const;

 private:
  LocalWorld(std::vector<std::unique_ptr<Communicator>> ranks,
             std::shared_ptr<local_internal::WorldAbort> abort);

  std::vector<std::unique_ptr<Communicator>> ranks_;
  std::shared_ptr<local_internal::WorldAbort> abort_;
};

// Runs `body(rank, world)` on `world_size` threads, one per rank, joins them all
// and returns OK or the first error to happen (by time), its message prefixed
// with "rank R: ". That first error aborts the world (LocalWorld::Abort), so the
// other ranks' waits end at once instead of timing out, and the ABORTED errors
// they return are not what this returns: the failing rank's own status is.
absl::Status RunLocalRanks(int world_size,
                           const std::function<absl::Status(int rank, Communicator& world)>& body,
                           CommOptions options = {});

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_LOCAL_LOCAL_WORLD_H_
