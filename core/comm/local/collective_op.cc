#include "core/comm/local/collective_op.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/comm/reduce_kernels.h"

namespace trident::comm::local_internal {
namespace {

// Bytes one chunk moves: small enough to split a large op across many threads
// and keep its inputs in cache, large enough that claiming a chunk is noise.
constexpr int64_t kChunkBytes = 256 * 1024;
constexpr int64_t kMinChunkElems = 2048;
// Operations that move at most this many bytes run on the thread that finds them
// ready (latency matters more than parallelism there).
constexpr int64_t kInlineBytes = 512 * 1024;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Per-thread scratch: the float/int accumulator of a chunk, then its rounded copy.
struct Scratch {
  std::vector<uint64_t> acc;
  std::vector<uint64_t> narrow;
};

Scratch& ThreadScratch(int64_t acc_bytes, int64_t narrow_bytes) {
  thread_local Scratch scratch;
  const auto words = [](int64_t bytes) { return static_cast<size_t>((bytes + 7) / 8); };
  if (scratch.acc.size() < words(acc_bytes)) scratch.acc.resize(words(acc_bytes));
  if (scratch.narrow.size() < words(narrow_bytes)) scratch.narrow.resize(words(narrow_bytes));
  return scratch;
}

// What one member passed, in words, for the disagreement message.
std::string DescribeArguments(const Contribution& c) {
  switch (c.kind) {
    case CommOp::kAllReduce:
      return absl::StrCat(c.in_count, " x ", DTypeName(c.dtype), " (", ReduceOpName(c.reduce_op),
                          ")");
    case CommOp::kReduceScatter:
      return absl::StrCat(c.out_count, " x ", DTypeName(c.dtype), " per rank (",
                          ReduceOpName(c.reduce_op), ")");
    case CommOp::kAllGather:
      return absl::StrCat(c.in_count, " x ", DTypeName(c.dtype), " per rank");
    case CommOp::kBroadcast:
      return absl::StrCat(c.in_count, " x ", DTypeName(c.dtype), " from root ", c.root);
    default:
      return std::string(CommOpName(c.kind));
  }
}

bool SameArguments(const Contribution& a, const Contribution& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case CommOp::kAllReduce:
      return a.in_count == b.in_count && a.dtype == b.dtype && a.reduce_op == b.reduce_op;
    case CommOp::kReduceScatter:
      return a.out_count == b.out_count && a.dtype == b.dtype && a.reduce_op == b.reduce_op;
    case CommOp::kAllGather:
      return a.in_count == b.in_count && a.dtype == b.dtype;
    case CommOp::kBroadcast:
      return a.in_count == b.in_count && a.dtype == b.dtype && a.root == b.root;
    default:
      return true;
  }
}

}  // namespace

std::vector<int> CollectiveOp::MissingWorldRanks(absl::Span<const int> world_ranks) const {
  std::vector<int> missing;
  for (size_t r = 0; r < arrived.size(); ++r) {
    if (!arrived[r]) missing.push_back(world_ranks[r]);
  }
  return missing;
}

absl::Status CollectiveOp::Plan(absl::string_view group_description,
                                absl::Span<const int> world_ranks) {
  const int n = static_cast<int>(parts.size());
  const Contribution& first = parts[0];
  bool agree = true;
  for (int r = 1; r < n; ++r) agree = agree && SameArguments(first, parts[r]);
  if (!agree) {
    std::vector<std::string> differing;
    for (int r = 0; r < n; ++r) {
      if (r == 0 || !SameArguments(first, parts[r])) {
        differing.push_back(absl::StrCat("world rank ", world_ranks[r], " issued ",
                                         CommOpName(parts[r].kind), " of ",
                                         DescribeArguments(parts[r])));
      }
    }
    num_chunks_ = 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "collective #", seq, " on ", group_description,
        ": members passed different arguments: ", absl::StrJoin(differing, "; ")));
  }

  const int64_t elem = static_cast<int64_t>(DTypeSize(first.dtype));
  chunk_elems_ = std::max(kMinChunkElems, kChunkBytes / (elem * n));
  int64_t total_bytes = 0;
  switch (first.kind) {
    case CommOp::kAllReduce:
      // One member: its buffer already holds the result (avg divides by 1).
      num_chunks_ = n == 1 ? 0 : CeilDiv(first.in_count, chunk_elems_);
      total_bytes = 2 * n * first.in_count * elem;
      break;
    case CommOp::kBroadcast:
      num_chunks_ = n == 1 ? 0 : CeilDiv(first.in_count, chunk_elems_);
      total_bytes = n * first.in_count * elem;
      break;
    case CommOp::kReduceScatter:
      chunks_per_slice_ = CeilDiv(first.out_count, chunk_elems_);
      num_chunks_ = n * chunks_per_slice_;
      total_bytes = (n + 1) * first.in_count * elem;
      break;
    case CommOp::kAllGather:
      chunks_per_slice_ = CeilDiv(first.in_count, chunk_elems_);
      num_chunks_ = n * chunks_per_slice_;
      total_bytes = (n + 1) * n * first.in_count * elem;
      break;
    default:  // Barrier: the rendezvous is the whole operation.
      num_chunks_ = 0;
      break;
  }
  run_inline_ = total_bytes <= kInlineBytes;
  return absl::OkStatus();
}

void CollectiveOp::ReduceRange(int64_t in_offset, int64_t len, int64_t out_offset,
                               int first_out, int last_out) const {
  const int n = static_cast<int>(parts.size());
  const DType dtype = parts[0].dtype;
  const ReduceOp op = parts[0].reduce_op;
  const int64_t elem = static_cast<int64_t>(DTypeSize(dtype));
  const DType acc_dtype = AccumulatorDType(dtype);
  const bool widened = acc_dtype != dtype;
  Scratch& scratch =
      ThreadScratch(len * static_cast<int64_t>(DTypeSize(acc_dtype)), widened ? len * elem : 0);
  void* acc = scratch.acc.data();
  const auto input = [&](int r) {
    return static_cast<const char*>(parts[r].in) + in_offset * elem;
  };
  WidenInto(acc, input(0), len, dtype);
  for (int r = 1; r < n; ++r) AccumulateInto(acc, input(r), len, dtype, op);
  if (op == ReduceOp::kAvg) DivideAccumulator(acc, len, dtype, n);
  const void* result = acc;
  if (widened) {
    NarrowInto(scratch.narrow.data(), acc, len, dtype);
    result = scratch.narrow.data();
  }
  for (int r = first_out; r <= last_out; ++r) {
    std::memcpy(static_cast<char*>(parts[r].out) + out_offset * elem, result, len * elem);
  }
}

void CollectiveOp::RunChunk(int64_t k) const {
  TRIDENT_CHECK(k >= 0 && k < num_chunks_) << "chunk " << k << " of " << num_chunks_;
  const Contribution& first = parts[0];
  const int n = static_cast<int>(parts.size());
  const int64_t elem = static_cast<int64_t>(DTypeSize(first.dtype));
  switch (first.kind) {
    case CommOp::kAllReduce: {
      const int64_t start = k * chunk_elems_;
      const int64_t len = std::min(chunk_elems_, first.in_count - start);
      ReduceRange(start, len, start, 0, n - 1);
      return;
    }
    case CommOp::kReduceScatter: {
      // Slice s of every member's input reduces into member s's output.
      const int s = static_cast<int>(k / chunks_per_slice_);
      const int64_t start = (k % chunks_per_slice_) * chunk_elems_;
      const int64_t len = std::min(chunk_elems_, first.out_count - start);
      ReduceRange(s * first.out_count + start, len, start, s, s);
      return;
    }
    case CommOp::kAllGather: {
      // Member s's input lands in slice s of every member's output.
      const int s = static_cast<int>(k / chunks_per_slice_);
      const int64_t start = (k % chunks_per_slice_) * chunk_elems_;
      const int64_t len = std::min(chunk_elems_, first.in_count - start);
      const char* src = static_cast<const char*>(parts[s].in) + start * elem;
      for (int r = 0; r < n; ++r) {
        char* dst = static_cast<char*>(parts[r].out) + (s * first.in_count + start) * elem;
        if (dst != src) std::memcpy(dst, src, len * elem);  // In place: already there.
      }
      return;
    }
    case CommOp::kBroadcast: {
      const int64_t start = k * chunk_elems_;
      const int64_t len = std::min(chunk_elems_, first.in_count - start);
      const char* src = static_cast<const char*>(parts[first.root].in) + start * elem;
      for (int r = 0; r < n; ++r) {
        char* dst = static_cast<char*>(parts[r].out) + start * elem;
        if (r != first.root && dst != src) std::memcpy(dst, src, len * elem);
      }
      return;
    }
    default:
      TRIDENT_CHECK(false) << "no chunks for " << CommOpName(first.kind);
  }
}

}  // namespace trident::comm::local_internal
