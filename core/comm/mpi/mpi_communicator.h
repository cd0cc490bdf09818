#ifndef TRIDENT_CORE_COMM_MPI_MPI_COMMUNICATOR_H_
#define TRIDENT_CORE_COMM_MPI_MPI_COMMUNICATOR_H_

// The MPI backend of the communicator interface: ranks are processes started by
// mpirun or srun, buffers are host memory, and any number of machines may take
// part. Create an MpiRuntime first (core/comm/mpi/mpi_runtime.h), then the world
// with MpiCommunicator::CreateWorld, then groups with CreateGroup.
//
// How it maps onto MPI:
// - Every operation is a nonblocking MPI call (MPI_Iallreduce,
//   MPI_Ireduce_scatter_block, MPI_Iallgather, MPI_Ibcast, MPI_Isend/MPI_Irecv,
//   MPI_Ibarrier) on a private communicator (the world is a dup of
//   MPI_COMM_WORLD, groups come from MPI_Comm_create_group over their members
//   only). CommHandle::Wait polls MPI_Test, yielding the CPU and then sleeping
//   briefly between polls, so that ranks oversubscribing a few cores leave them
//   to the ranks doing work; the wait ends at completion or after timeout()
//   without progress. A batch of sends and receives (BatchSendRecvAsync) posts
//   all its requests at once and one handle polls them together.
// - Collectives of one communicator run one after the other in issue order, as
//   on a stream: the next is handed to MPI when the previous completed (two MPI
//   collectives in flight on one buffer would race). Any wait of the process
//   advances every communicator's queue. Sends and receives start at once.
// - Results are identical on every member: with Open MPI 4.1's defaults an
//   in-place MPI_Iallreduce reduces to one rank and broadcasts (libnbc's
//   binomial algorithm; the collective suite checks the bits), and each
//   reduce-scatter slice is reduced on one rank. The combination order is MPI's,
//   not rank order, and bf16/fp16 round after each pairwise combination.
// - fp32, int32, int64 reduce with MPI's built-in operations; bf16 and fp16 with
//   user operations over 16-bit words that widen to float (ReduceInto). kAvg is
//   a sum followed by DivideInPlace.
// - MPI counts are `int`: an operation with more elements than
//   MpiSettings::max_count_per_call is split into several MPI calls (a
//   reduce-scatter or all-gather whose per-rank slice is that large becomes one
//   MPI_Ireduce or MPI_Ibcast per member and piece).
// - A timeout names the world ranks that did not arrive, from the arrival
//   counters of core/comm/mpi/arrival_board.h; for send/recv it names the peer.
//   Since those may be waiting for someone else in turn, it also names the
//   processes whose heartbeat (a thread per process, on the same board) stands
//   still: "world rank 3 shows no sign of life" for a stopped process. A
//   process that fails for a known reason does not leave its peers to time
//   out: it calls MpiAbortJob (core/comm/mpi/mpi_runtime.h).
//   MPI cannot cancel a posted collective: after DEADLINE_EXCEEDED the request
//   stays posted, so a peer that arrives late may still complete it and write
//   the buffer. The communicator is broken from then on; the expected reaction
//   is to end the job.
// - Destroying an MpiCommunicator never blocks, so members may destroy their
//   groups in any order. The MPI communicator is freed once every member has
//   destroyed its side (an MPI_Ibarrier, checked at later group creations and
//   destructions); a broken one is never freed, because Open MPI would reuse
//   its context id for a new communicator while stray messages of the
//   abandoned operations are still arriving.

#include <mpi.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"

namespace trident::comm {

namespace mpi_internal {
struct GroupState;
}  // namespace mpi_internal

// Knobs of the MPI backend that the interface's CommOptions do not cover.
struct MpiSettings {
  // Most elements passed to one MPI call (MPI counts are int). Tests lower it to
  // exercise the splitting; it must be at least 1.
  int64_t max_count_per_call = std::numeric_limits<int>::max();
  // How long a timed-out operation waits for its peers' arrival counters
  // before calling a peer "did not respond".
  absl::Duration arrival_read_grace = absl::Milliseconds(200);
};

class MpiCommunicator final : public Communicator {
 public:
  // The communicator of every process of the job, named "world" (collective
  // over MPI_COMM_WORLD). FAILED_PRECONDITION when no MpiRuntime is active;
  // INVALID_ARGUMENT for settings out of range. Groups inherit `settings`.
  static absl::StatusOr<std::unique_ptr<MpiCommunicator>> CreateWorld(
      CommOptions options = CommOptions(), MpiSettings settings = MpiSettings());

  ~MpiCommunicator() override;

  int rank() const override;
  int size() const override;
  absl::Span<const int> world_ranks() const override;
  const std::string& name() const override;
  absl::string_view backend() const override { return "mpi"; }

  // Whether a timeout can name the missing ranks (the arrival counters'
  // RMA window exists).
  bool tracks_arrivals() const;
  // The underlying MPI communicator (for bootstrapping NCCL); owned by this object.
  MPI_Comm mpi_comm() const;

 private:
  MpiCommunicator(CommOptions options, std::shared_ptr<mpi_internal::GroupState> state);

  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllReduce(Buffer buffer, ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoReduceScatter(ConstBuffer in, Buffer out,
                                                              ReduceOp op) override;
  // Also refuses an input that overlaps the output other than as this rank's
  // own slice (MPI forbids it).
  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllGather(ConstBuffer in, Buffer out) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBroadcast(Buffer buffer, int root) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBarrier() override;
  // Posts every MPI_Isend/MPI_Irecv of `ops` at once; one handle polls them
  // all. Also refuses tags above MPI_TAG_UB.
  absl::StatusOr<std::unique_ptr<CommHandle>> DoSendRecv(absl::Span<const P2POp> ops) override;
  // Collective over the members only (MPI_Comm_create_group). Besides the
  // interface's checks, the members compare their rank lists and names and
  // fail with INVALID_ARGUMENT when they disagree. If a member never calls,
  // the others block inside MPI_Comm_create_group, which MPI cannot time out
  // or abandon: after timeout() a watchdog prints what did not complete and
  // ends the job (MpiAbortJob). CreateWorld is guarded the same way.
  absl::StatusOr<std::unique_ptr<Communicator>> DoCreateGroup(absl::Span<const int> ranks,
                                                              absl::string_view name) override;

  std::shared_ptr<mpi_internal::GroupState> state_;
};

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_MPI_MPI_COMMUNICATOR_H_
