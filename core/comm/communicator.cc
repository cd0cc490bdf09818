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

absl::Status ValidateBuffer(const Communicator& comm, CommOp op, absl::string_view role,
                            const ConstBuffer& buffer) {
  if (buffer.count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(comm, op), ": ", role, " count ",
                                                   buffer.count, " is negative"));
  }
  if (buffer.count > 0 && buffer.data == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(comm, op), ": ", role,
                                                   " data is null but count is ", buffer.count));
  }
  return absl::OkStatus();
}

namespace {

// The checks reduce-scatter and all-gather share: both buffers well formed and
// of one dtype.
absl::Status ValidateInputOutput(const Communicator& comm, CommOp op, const ConstBuffer& in,
                                 const Buffer& out) {
  if (absl::Status s = ValidateBuffer(comm, op, "input", in); !s.ok()) return s;
  if (absl::Status s = ValidateBuffer(comm, op, "output", out); !s.ok()) return s;
  if (in.dtype != out.dtype) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(comm, op), ": input dtype ",
                                                   DTypeName(in.dtype), " differs from output dtype ",
                                                   DTypeName(out.dtype)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateReduceScatter(const Communicator& comm, const ConstBuffer& in,
                                   const Buffer& out) {
  const CommOp op = CommOp::kReduceScatter;
  if (absl::Status s = ValidateInputOutput(comm, op, in, out); !s.ok()) return s;
  if (in.count != out.count * comm.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Prefix(comm, op), ": input count ", in.count, " must equal output count ", out.count,
        " times the group size ", comm.size(), " (", out.count * comm.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAllGather(const Communicator& comm, const ConstBuffer& in,
                               const Buffer& out) {
  const CommOp op = CommOp::kAllGather;
  if (absl::Status s = ValidateInputOutput(comm, op, in, out); !s.ok()) return s;
  if (out.count != in.count * comm.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Prefix(comm, op), ": output count ", out.count, " must equal input count ", in.count,
        " times the group size ", comm.size(), " (", in.count * comm.size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRoot(const Communicator& comm, CommOp op, int root) {
  if (root < 0 || root >= comm.size()) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(comm, op), ": root ", root,
                                                   " is not a group rank in [0, ", comm.size(),
                                                   ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePeer(const Communicator& comm, CommOp op, int peer, int tag) {
  if (peer < 0 || peer >= comm.size()) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(comm, op), ": peer ", peer,
                                                   " is not a group rank in [0, ", comm.size(),
                                                   ")"));
  }
  if (peer == comm.rank()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(comm, op), ": peer ", peer,
                     " is the calling rank itself; point-to-point needs another member"));
  }
  if (tag < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Prefix(comm, op), ": tag ", tag, " is negative; tags must be >= 0"));
  }
  return absl::OkStatus();
}

absl::Status ValidateGroupRanks(const Communicator& comm, absl::Span<const int> ranks) {
  const std::string prefix = absl::StrCat("CreateGroup on ", DescribeGroup(comm));
  if (ranks.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": the rank list is empty"));
  }
  absl::flat_hash_set<int> seen;
  bool has_caller = false;
  for (int r : ranks) {
    if (r < 0 || r >= comm.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, ": rank ", r, " is not a group rank in [0, ", comm.size(), ")"));
    }
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

void ReduceInto(void* dst, const void* src, int64_t count, DType dtype, ReduceOp op) {
  ReduceElementsInto(dst, src, count, dtype, op);
}

void DivideInPlace(void* data, int64_t count, DType dtype, int divisor) {
  DivideElements(data, count, dtype, divisor);
}

}  // namespace trident::comm
