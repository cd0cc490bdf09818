#ifndef TRIDENT_CORE_COMM_COMMUNICATOR_H_
#define TRIDENT_CORE_COMM_COMMUNICATOR_H_

// The one communicator interface every backend implements (DESIGN.md rule 5):
// local threads, MPI processes, NCCL on GPUs. A Communicator is one rank's
// handle on a group; the group's members are listed by their world ranks, so
// error messages name ranks the way a user sees them.
//
// Semantics shared by every backend:
// - Collectives on one communicator are issued in the same order on every member
//   (as in MPI and NCCL). Point-to-point messages between two members with the
//   same tag arrive in the order they were sent.
// - Every operation has an async form returning a CommHandle; the buffers belong
//   to the operation until Wait() returns. The blocking forms are the async form
//   followed by Wait().
// - An operation that does not complete within timeout() fails with
//   DEADLINE_EXCEEDED naming the group, the operation and the ranks that did not
//   arrive. After such a failure the communicator is broken: further operations
//   fail with FAILED_PRECONDITION (the group's members disagree on what ran).
// - A rank that fails ends the whole job within seconds; nobody waits for a
//   timeout when the cause is known. The local backend aborts its world
//   (LocalWorld::Abort): every waiting and later operation of every group fails
//   with ABORTED "aborted: rank R failed: <its message>". Under MPI the failing
//   process prints its message and calls MPI_Abort (MpiAbortJob), which ends
//   every process of the job; timeouts remain for the causes nobody reports (a
//   stopped or unreachable process).
// - Argument errors (mismatched counts or dtypes, a peer out of range) surface as
//   INVALID_ARGUMENT from Wait(), worded alike by every backend (the checks
//   live in this class, see Communicator); a refused call is not issued, so the
//   members' next collective still pairs up.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/dtype.h"

namespace trident::comm {

enum class ReduceOp : uint8_t { kSum, kAvg, kMax, kMin };

absl::string_view ReduceOpName(ReduceOp op);

// A typed, contiguous buffer the caller owns: host memory for the local and MPI
// backends, device memory for NCCL.
struct Buffer {
  void* data = nullptr;
  int64_t count = 0;  // Elements, not bytes.
  DType dtype = DType::kFloat32;

  int64_t bytes() const { return count * static_cast<int64_t>(DTypeSize(dtype)); }
};

struct ConstBuffer {
  const void* data = nullptr;
  int64_t count = 0;
  DType dtype = DType::kFloat32;

  ConstBuffer() = default;
  ConstBuffer(const void* data, int64_t count, DType dtype)
      : data(data), count(count), dtype(dtype) {}
  ConstBuffer(const Buffer& b) : data(b.data), count(b.count), dtype(b.dtype) {}  // NOLINT

  int64_t bytes() const { return count * static_cast<int64_t>(DTypeSize(dtype)); }
};

template <typename T>
Buffer MakeBuffer(absl::Span<T> values) {
  return Buffer{values.data(), static_cast<int64_t>(values.size()), DTypeOf<T>::value};
}

template <typename T>
ConstBuffer MakeConstBuffer(absl::Span<const T> values) {
  return ConstBuffer(values.data(), static_cast<int64_t>(values.size()), DTypeOf<T>::value);
}

// The operations a communicator counts (see CommStats).
enum class CommOp : uint8_t {
  kAllReduce,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kSend,
  kRecv,
  kBarrier,
};
inline constexpr int kNumCommOps = 7;

absl::string_view CommOpName(CommOp op);

// Calls and payload bytes per operation, counted by the issuing rank. The
// payload of a collective is the size of this rank's full buffer: all-reduce and
// broadcast count the buffer, all-gather the gathered output, reduce-scatter the
// unreduced input, send/recv the message. (Wire traffic depends on the algorithm;
// bench/comm_bench converts payload to bus bandwidth.)
struct CommStats {
  std::array<int64_t, kNumCommOps> calls{};
  std::array<int64_t, kNumCommOps> bytes{};

  int64_t calls_of(CommOp op) const { return calls[static_cast<int>(op)]; }
  int64_t bytes_of(CommOp op) const { return bytes[static_cast<int>(op)]; }
  void Record(CommOp op, int64_t payload_bytes) {
    ++calls[static_cast<int>(op)];
    bytes[static_cast<int>(op)] += payload_bytes;
  }
};

// A pending operation. Destroying a handle before Wait() waits for it (and
// drops its status), so buffers are never written after they are released.
class CommHandle {
 public:
  virtual ~CommHandle() = default;
  // Blocks until the operation completes, fails, or times out.
  virtual absl::Status Wait() = 0;
  // Lets the operation advance without blocking, for backends whose
  // nonblocking operations only move inside library calls (MPI): callers that
  // compute while operations are pending call it now and then. A no-op by
  // default (the local backend progresses on its own threads).
  virtual void Progress() {}
  // Whether the operation has finished (completed or failed); after true,
  // Wait() returns its status at once. Lets one rank serve several peers in
  // whatever order they become ready, by posting a receive per peer and
  // polling them round robin (the parameter server,
  // data_parallel/sync_modes/parameter_server.h), the polling counterpart of
  // MPI_ANY_SOURCE that keeps each message's source known. The local and MPI
  // point-to-point handles answer without blocking; other handles keep this
  // default, which waits for the operation and answers true.
  virtual bool Test() {
    Wait().IgnoreError();
    return true;
  }
};

// A handle that is already complete, holding the operation's final status.
std::unique_ptr<CommHandle> CompletedHandle(absl::Status status);

// One send or receive of a batch (Communicator::BatchSendRecvAsync), as NCCL's
// grouped calls and PyTorch's batch_isend_irecv take them.
struct P2POp {
  static P2POp Send(ConstBuffer buffer, int peer, int tag) {
    return P2POp{CommOp::kSend, buffer, Buffer(), peer, tag};
  }
  static P2POp Recv(Buffer buffer, int peer, int tag) {
    return P2POp{CommOp::kRecv, ConstBuffer(), buffer, peer, tag};
  }

  // The buffer the operation moves, whichever direction.
  ConstBuffer buffer() const {
    return op == CommOp::kSend ? send_buffer : ConstBuffer(recv_buffer);
  }

  CommOp op = CommOp::kSend;  // kSend or kRecv.
  ConstBuffer send_buffer;    // The message, for a send.
  Buffer recv_buffer;         // Where the message lands, for a receive.
  int peer = 0;               // A group rank.
  int tag = 0;
};

struct CommOptions {
  // How long any single operation may wait for its peers.
  absl::Duration timeout = absl::Minutes(5);
};

// The public operations are template methods: each checks its arguments
// (one order and one wording for every backend, so that users and the shared
// test suite see the same INVALID_ARGUMENT message whatever runs underneath),
// hands the call to the backend's Do* method, and counts it in stats(). A
// backend therefore only moves data; it never validates what the base class
// checked nor counts. It may still refuse a call for its own reasons (a broken
// group, an MPI tag above MPI_TAG_UB, posting failed) by returning an error
// from Do*: the call then completes with that error and is not counted.
// Counted calls are exactly the calls the backend started.
class Communicator {
 public:
  virtual ~Communicator() = default;

  // This rank's position in the group, 0 <= rank() < size().
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // The world rank of each member, indexed by group rank.
  virtual absl::Span<const int> world_ranks() const = 0;
  // The group's name for messages, e.g. "world" or "tp[dp=0,pp=1]".
  virtual const std::string& name() const = 0;
  // The backend's name: "local", "mpi", "nccl".
  virtual absl::string_view backend() const = 0;

  // In place: every member ends with the reduction of every member's buffer.
  std::unique_ptr<CommHandle> AllReduceAsync(Buffer buffer, ReduceOp op);
  // in.count == out.count * size(); member r receives the reduction of the r-th
  // slice of out.count elements.
  std::unique_ptr<CommHandle> ReduceScatterAsync(ConstBuffer in, Buffer out, ReduceOp op);
  // out.count == in.count * size(); member r's input lands in the r-th slice.
  std::unique_ptr<CommHandle> AllGatherAsync(ConstBuffer in, Buffer out);
  // The root's buffer is copied into every member's buffer. `root` is a group rank.
  std::unique_ptr<CommHandle> BroadcastAsync(Buffer buffer, int root);
  // Point to point; `peer` is a group rank other than rank(), tags are >= 0.
  std::unique_ptr<CommHandle> SendAsync(ConstBuffer buffer, int peer, int tag);
  std::unique_ptr<CommHandle> RecvAsync(Buffer buffer, int peer, int tag);
  std::unique_ptr<CommHandle> BarrierAsync();
  // Starts every send and receive of `ops` together and returns one handle
  // that waits for all of them (its status is the first failure in list
  // order). Since nothing waits between the ops, any pattern completes
  // whatever order the peers list their ops in (e.g. a ring where every rank
  // sends to rank+1 and receives from rank-1), which the blocking forms in the
  // wrong order would deadlock. Ops start in list order, so messages of one
  // (peer, tag) match in list order. Every op is checked first: if one is
  // malformed, none starts and the error names its index. Each op counts as
  // one send or receive in stats(). An empty batch completes at once.
  std::unique_ptr<CommHandle> BatchSendRecvAsync(absl::Span<const P2POp> ops);

  // Creates the communicator of the members `ranks` (group ranks of this
  // communicator, in the order that defines the new group's ranks). Called by
  // exactly those members and by no one else; members create their groups in
  // the same order. The child inherits this communicator's options.
  absl::StatusOr<std::unique_ptr<Communicator>> CreateGroup(absl::Span<const int> ranks,
                                                            absl::string_view name);

  // Blocking forms.
  absl::Status AllReduce(Buffer buffer, ReduceOp op) { return AllReduceAsync(buffer, op)->Wait(); }
  absl::Status ReduceScatter(ConstBuffer in, Buffer out, ReduceOp op) {
    return ReduceScatterAsync(in, out, op)->Wait();
  }
  absl::Status AllGather(ConstBuffer in, Buffer out) { return AllGatherAsync(in, out)->Wait(); }
  absl::Status Broadcast(Buffer buffer, int root) { return BroadcastAsync(buffer, root)->Wait(); }
  absl::Status Send(ConstBuffer buffer, int peer, int tag) {
    return SendAsync(buffer, peer, tag)->Wait();
  }
  absl::Status Recv(Buffer buffer, int peer, int tag) {
    return RecvAsync(buffer, peer, tag)->Wait();
  }
  absl::Status Barrier() { return BarrierAsync()->Wait(); }
  absl::Status BatchSendRecv(absl::Span<const P2POp> ops) {
    return BatchSendRecvAsync(ops)->Wait();
  }

  const CommOptions& options() const { return options_; }
  absl::Duration timeout() const { return options_.timeout; }
  void set_timeout(absl::Duration timeout) { options_.timeout = timeout; }

  // What this rank issued on this communicator since creation or ResetStats().
  const CommStats& stats() const { return stats_; }
  void ResetStats() { stats_ = CommStats(); }

 protected:
  explicit Communicator(CommOptions options) : options_(options) {}

  // The backend's half of each operation, called with arguments the public
  // method checked: buffers well formed, dtypes and counts consistent, roots
  // and peers group ranks, peers not this rank, tags >= 0, batches non-empty.
  // Returns the pending operation, or an error when the backend did not start
  // it (then nothing of it runs and it is not counted).
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoAllReduce(Buffer buffer, ReduceOp op) = 0;
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoReduceScatter(ConstBuffer in, Buffer out,
                                                                      ReduceOp op) = 0;
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoAllGather(ConstBuffer in, Buffer out) = 0;
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoBroadcast(Buffer buffer, int root) = 0;
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoBarrier() = 0;
  // Sends and receives, single ones included (SendAsync is a batch of one op).
  // Returns an error when the backend refused to start the batch; a failure
  // after some ops started (the group broke meanwhile) is the handle's status.
  virtual absl::StatusOr<std::unique_ptr<CommHandle>> DoSendRecv(absl::Span<const P2POp> ops) = 0;
  // `ranks` are distinct group ranks that include rank().
  virtual absl::StatusOr<std::unique_ptr<Communicator>> DoCreateGroup(absl::Span<const int> ranks,
                                                                      absl::string_view name) = 0;

 private:
  // Counts `op` with `payload_bytes` when `started` holds a handle; returns a
  // handle either way.
  std::unique_ptr<CommHandle> Counted(absl::StatusOr<std::unique_ptr<CommHandle>> started,
                                      CommOp op, int64_t payload_bytes);

  CommOptions options_;
  CommStats stats_;
};

// "tp[dp=0,pp=1] (world ranks 0, 1)"-style description used in error messages.
// Runs of three or more consecutive ranks are written as a range: "world (world
// ranks 0-7)".
std::string DescribeGroup(const Communicator& comm);
std::string DescribeGroup(absl::string_view name, absl::Span<const int> world_ranks);

// "recv on pp (world ranks 0-3)", or for an op of a batch of several,
// "recv (op 2 of a batch of 3) on pp (world ranks 0-3)": how messages name
// ops[index] of a send/recv batch (a single SendAsync/RecvAsync is a batch of
// one).
std::string DescribeP2POp(const Communicator& comm, absl::Span<const P2POp> ops, size_t index);

// The DEADLINE_EXCEEDED status of an operation that waited longer than
// `timeout`: "all-reduce on tp[pp=0] (world ranks 0, 1) timed out after 200ms;
// did not arrive: world rank 1". `group` is a DescribeGroup() string. Every
// backend words its timeouts this way so that tests and users see one format.
absl::Status DeadlineExceededError(absl::string_view group, CommOp op, absl::Duration timeout,
                                   absl::Span<const int> missing_world_ranks);

// The FAILED_PRECONDITION status of an operation issued on a communicator that an
// earlier failure (`cause`) broke.
absl::Status BrokenCommunicatorError(absl::string_view group, CommOp op,
                                     const absl::Status& cause);

// Reduces `count` elements of `src` into `dst` in place (dst = dst op src), in
// the element type `dtype`; 16-bit floats are widened to float, combined and
// rounded back (one rounding per call). kAvg is treated as kSum (the caller
// divides with DivideInPlace).
void ReduceInto(void* dst, const void* src, int64_t count, DType dtype, ReduceOp op);

// Divides `count` elements by `divisor` in place (finishes kAvg).
void DivideInPlace(void* data, int64_t count, DType dtype, int divisor);

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_COMMUNICATOR_H_
