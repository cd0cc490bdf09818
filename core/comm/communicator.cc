#include "core/comm/communicator.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/comm/reduce_kernels.h"

namespace trident::comm {
namespace {

// A handle whose operation finished when it was created.
class DoneHandle final : public CommHandle {
 public:
  explicit DoneHandle(absl::Status status) : status_(std::move(status)) {}
  absl::Status Wait() override { return status_; }

 private:
  absl::Status status_;
};

// "0-3, 6, 8-10": runs of three or more consecutive ranks become a range.
std::string FormatRanks(absl::Span<const int> ranks) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < ranks.size()) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (j - i >= 2) {
      parts.push_back(absl::StrCat(ranks[i], "-", ranks[j]));
    } else {
      for (size_t k = i; k <= j; ++k) parts.push_back(absl::StrCat(ranks[k]));
    }
    i = j + 1;
  }
  return absl::StrJoin(parts, ", ");
}

std::string Prefix(const Communicator& comm, CommOp op) {
  return absl::StrCat(CommOpName(op), " on ", DescribeGroup(comm));
}

}  // namespace

absl::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "unknown";
}

absl::string_view CommOpName(CommOp op) {
  switch (op) {
    case CommOp::kAllReduce:
      return "all-reduce";
    case CommOp::kReduceScatter:
      return "reduce-scatter";
    case CommOp::kAllGather:
      return "all-gather";
    case CommOp::kBroadcast:
      return "broadcast";
    case CommOp::kSend:
      return "send";
    case CommOp::kRecv:
      return "recv";
    case CommOp::kBarrier:
      return "barrier";
  }
  return "unknown";
}

std::unique_ptr<CommHandle> CompletedHandle(absl::Status status) {
  return std::make_unique<DoneHandle>(std::move(status));
}

std::string DescribeGroup(absl::string_view name, absl::Span<const int> world_ranks) {
  return absl::StrCat(name, " (world rank", world_ranks.size() == 1 ? " " : "s ",
                      FormatRanks(world_ranks), ")");
}

std::string DescribeGroup(const Communicator& comm) {
  return DescribeGroup(comm.name(), comm.world_ranks());
}

std::string DescribeP2POp(const Communicator& comm, absl::Span<const P2POp> ops, size_t index) {
  const std::string position =
      ops.size() == 1 ? "" : absl::StrCat(" (op ", index, " of a batch of ", ops.size(), ")");
  return absl::StrCat(CommOpName(ops[index].op), position, " on ", DescribeGroup(comm));
}

absl::Status DeadlineExceededError(absl::string_view group, CommOp op, absl::Duration timeout,
                                   absl::Span<const int> missing_world_ranks) {
  return absl::DeadlineExceededError(absl::StrCat(
      CommOpName(op), " on ", group, " timed out after ", absl::FormatDuration(timeout),
      "; did not arrive: world rank", missing_world_ranks.size() == 1 ? " " : "s ",
      FormatRanks(missing_world_ranks)));
}

absl::Status BrokenCommunicatorError(absl::string_view group, CommOp op,
                                     const absl::Status& cause) {
  return absl::FailedPreconditionError(
      absl::StrCat(CommOpName(op), " on ", group,
                   " refused: the communicator is broken by an earlier failure (",
                   cause.ToString(), ")"));
}

namespace {

// The argument checks of the public operations. They live here, not in the
// backends, so that every backend refuses a call with the same words and in the
// same order: buffers (input before output), then how they relate (dtype,
// counts), then roots, peers and tags. `prefix` names the operation and the
// group ("recv on pp (world ranks 0-3)").

absl::Status CheckBuffer(absl::string_view prefix, absl::string_view role,
                         const ConstBuffer& buffer) {
  if (buffer.count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": ", role, " count ", buffer.count, " is negative"));
  }
  if (buffer.count > 0 && buffer.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": ", role, " data is null but count is ", buffer.count));
  }
  return absl::OkStatus();
}

// Reduce-scatter and all-gather: both buffers well formed, one dtype, and the
// larger buffer size() times the smaller.
absl::Status CheckScatterGather(const Communicator& comm, CommOp op, const ConstBuffer& in,
                                const Buffer& out) {
  const std::string prefix = Prefix(comm, op);
  if (absl::Status s = CheckBuffer(prefix, "input", in); !s.ok()) return s;
  if (absl::Status s = CheckBuffer(prefix, "output", out); !s.ok()) return s;
  if (in.dtype != out.dtype) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": input dtype ", DTypeName(in.dtype),
                                                   " differs from output dtype ",
                                                   DTypeName(out.dtype)));
  }
  const bool scatter = op == CommOp::kReduceScatter;
  const absl::string_view many_role = scatter ? "input" : "output";
  const absl::string_view one_role = scatter ? "output" : "input";
  const int64_t many = scatter ? in.count : out.count;
  const int64_t one = scatter ? out.count : in.count;
  if (many != one * comm.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": ", many_role, " count ", many, " must equal ", one_role, " count ",
                     one, " times the group size ", comm.size(), " (", one * comm.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckGroupRank(absl::string_view prefix, absl::string_view role, int rank, int size) {
  if (rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": ", role, " ", rank, " is not a group rank in [0, ", size, ")"));
  }
  return absl::OkStatus();
}

// A send or receive: its buffer, then its peer (another member), then its tag.
absl::Status CheckPointToPoint(const Communicator& comm, absl::string_view prefix,
                               const P2POp& op) {
  if (op.op != CommOp::kSend && op.op != CommOp::kRecv) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": not a send or recv"));
  }
  if (absl::Status s = CheckBuffer(prefix, "buffer", op.buffer()); !s.ok()) return s;
  if (absl::Status s = CheckGroupRank(prefix, "peer", op.peer, comm.size()); !s.ok()) return s;
  if (op.peer == comm.rank()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": peer ", op.peer,
                     " is the calling rank itself; point-to-point needs another member"));
  }
  if (op.tag < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": tag ", op.tag, " is negative; tags must be >= 0"));
  }
  return absl::OkStatus();
}

absl::Status CheckGroupRanks(const Communicator& comm, absl::Span<const int> ranks) {
  const std::string prefix = absl::StrCat("CreateGroup on ", DescribeGroup(comm));
  if (ranks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": the rank list is empty"));
  }
  absl::flat_hash_set<int> seen;
  bool has_caller = false;
  for (int r : ranks) {
    if (absl::Status s = CheckGroupRank(prefix, "rank", r, comm.size()); !s.ok()) return s;
    if (!seen.insert(r).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": rank ", r, " is listed more than once in [",
                       absl::StrJoin(ranks, ", "), "]"));
    }
    if (r == comm.rank()) has_caller = true;
  }
  if (!has_caller) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, ": ranks [", absl::StrJoin(ranks, ", "), "] do not include the calling rank ",
        comm.rank(), "; only the members of a new group call CreateGroup"));
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<CommHandle> Communicator::Counted(
    absl::StatusOr<std::unique_ptr<CommHandle>> started, CommOp op, int64_t payload_bytes) {
  if (!started.ok()) return CompletedHandle(started.status());
  stats_.Record(op, payload_bytes);
  return *std::move(started);
}

std::unique_ptr<CommHandle> Communicator::AllReduceAsync(Buffer buffer, ReduceOp op) {
  const CommOp kind = CommOp::kAllReduce;
  if (absl::Status s = CheckBuffer(Prefix(*this, kind), "buffer", buffer); !s.ok()) {
    return CompletedHandle(std::move(s));
  }
  return Counted(DoAllReduce(buffer, op), kind, buffer.bytes());
}

std::unique_ptr<CommHandle> Communicator::ReduceScatterAsync(ConstBuffer in, Buffer out,
                                                             ReduceOp op) {
  const CommOp kind = CommOp::kReduceScatter;
  if (absl::Status s = CheckScatterGather(*this, kind, in, out); !s.ok()) {
    return CompletedHandle(std::move(s));
  }
  return Counted(DoReduceScatter(in, out, op), kind, in.bytes());
}

std::unique_ptr<CommHandle> Communicator::AllGatherAsync(ConstBuffer in, Buffer out) {
  const CommOp kind = CommOp::kAllGather;
  if (absl::Status s = CheckScatterGather(*this, kind, in, out); !s.ok()) {
    return CompletedHandle(std::move(s));
  }
  return Counted(DoAllGather(in, out), kind, out.bytes());
}

std::unique_ptr<CommHandle> Communicator::BroadcastAsync(Buffer buffer, int root) {
  const CommOp kind = CommOp::kBroadcast;
  const std::string prefix = Prefix(*this, kind);
  absl::Status s = CheckBuffer(prefix, "buffer", buffer);
  if (s.ok()) s = CheckGroupRank(prefix, "root", root, size());
  if (!s.ok()) return CompletedHandle(std::move(s));
  return Counted(DoBroadcast(buffer, root), kind, buffer.bytes());
}

std::unique_ptr<CommHandle> Communicator::BarrierAsync() {
  return Counted(DoBarrier(), CommOp::kBarrier, 0);
}

std::unique_ptr<CommHandle> Communicator::SendAsync(ConstBuffer buffer, int peer, int tag) {
  const P2POp op = P2POp::Send(buffer, peer, tag);
  return BatchSendRecvAsync(absl::MakeConstSpan(&op, 1));
}

std::unique_ptr<CommHandle> Communicator::RecvAsync(Buffer buffer, int peer, int tag) {
  const P2POp op = P2POp::Recv(buffer, peer, tag);
  return BatchSendRecvAsync(absl::MakeConstSpan(&op, 1));
}

std::unique_ptr<CommHandle> Communicator::BatchSendRecvAsync(absl::Span<const P2POp> ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    if (absl::Status s = CheckPointToPoint(*this, DescribeP2POp(*this, ops, i), ops[i]); !s.ok()) {
      return CompletedHandle(std::move(s));
    }
  }
  if (ops.empty()) return CompletedHandle(absl::OkStatus());
  absl::StatusOr<std::unique_ptr<CommHandle>> started = DoSendRecv(ops);
  if (!started.ok()) return CompletedHandle(started.status());
  for (const P2POp& op : ops) stats_.Record(op.op, op.buffer().bytes());
  return *std::move(started);
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::CreateGroup(absl::Span<const int> ranks,
                                                                        absl::string_view name) {
  if (absl::Status s = CheckGroupRanks(*this, ranks); !s.ok()) return s;
  return DoCreateGroup(ranks, name);
}

void ReduceInto(void* dst, const void* src, int64_t count, DType dtype, ReduceOp op) {
  ReduceElementsInto(dst, src, count, dtype, op);
}

void DivideInPlace(void* data, int64_t count, DType dtype, int divisor) {
  DivideElements(data, count, dtype, divisor);
}

}  // namespace trident::comm
