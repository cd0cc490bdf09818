#include "core/comm/allreduce_algorithms.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::comm {
namespace {

// Heap bytes aligned for any element type (operator new aligns to 16).
class ScratchBytes {
 public:
  explicit ScratchBytes(int64_t bytes) : words_((bytes + 7) / 8) {}
  void* data() { return words_.data(); }

 private:
  std::vector<int64_t> words_;
};

// The plain ring's codec: elements travel as themselves and combine with `op`.
class ElementCodec final : public RingCodec {
 public:
  ElementCodec(DType dtype, ReduceOp op) : dtype_(dtype), op_(op) {}
  DType wire_dtype() const override { return dtype_; }
  int64_t WireCount(int64_t count) const override { return count; }
  void Encode(const void* data, int64_t count, void* wire) const override {
    std::memcpy(wire, data, count * DTypeSize(dtype_));
  }
  void DecodeAccumulate(const void* wire, int64_t count, void* data) const override {
    ReduceInto(data, wire, count, dtype_, op_);
  }
  void DecodeCopy(const void* wire, int64_t count, void* data) const override {
    std::memcpy(data, wire, count * DTypeSize(dtype_));
  }
  bool passthrough() const override { return true; }

 private:
  DType dtype_;
  ReduceOp op_;
};

// A malformed buffer is refused before any message is sent, so the members'
// next operation still pairs up (as the communicator's own checks do).
absl::Status CheckBuffer(const Communicator& comm, absl::string_view algorithm,
                         const Buffer& buffer) {
  if (buffer.count < 0 || (buffer.count > 0 && buffer.data == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat(algorithm, " all-reduce on ", DescribeGroup(comm), ": buffer count ",
                     buffer.count, buffer.count < 0 ? " is negative" : " with null data"));
  }
  return absl::OkStatus();
}

char* At(Buffer buffer, int64_t element) {
  return static_cast<char*>(buffer.data) + element * static_cast<int64_t>(DTypeSize(buffer.dtype));
}

}  // namespace

absl::string_view AllReduceAlgorithmName(AllReduceAlgorithm algorithm) {
  switch (algorithm) {
    case AllReduceAlgorithm::kNative:
      return "native";
    case AllReduceAlgorithm::kRing:
      return "ring";
    case AllReduceAlgorithm::kTree:
      return "tree";
  }
  return "unknown";
}

absl::StatusOr<AllReduceAlgorithm> ParseAllReduceAlgorithm(absl::string_view name) {
  for (AllReduceAlgorithm a :
       {AllReduceAlgorithm::kNative, AllReduceAlgorithm::kRing, AllReduceAlgorithm::kTree}) {
    if (name == AllReduceAlgorithmName(a)) return a;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("all-reduce algorithm \"", name, "\" is not one of native, ring, tree"));
}

RingSegment RingSegmentOf(int64_t count, int n, int s) {
  const int64_t base = count / n;
  const int64_t extra = count % n;
  return RingSegment{.offset = s * base + std::min<int64_t>(s, extra),
                     .count = base + (s < extra ? 1 : 0)};
}

int64_t RingBytesSentByRank(const RingCodec& codec, int64_t count, int n, int rank) {
  if (n == 1) return 0;
  const int64_t wire_size = static_cast<int64_t>(DTypeSize(codec.wire_dtype()));
  int64_t bytes = 0;
  for (int s = 0; s < n - 1; ++s) {
    const int reduce_scatter_segment = ((rank - s) % n + n) % n;
    const int all_gather_segment = ((rank + 1 - s) % n + n) % n;
    bytes += codec.WireCount(RingSegmentOf(count, n, reduce_scatter_segment).count) * wire_size;
    bytes += codec.WireCount(RingSegmentOf(count, n, all_gather_segment).count) * wire_size;
  }
  return bytes;
}

absl::Status RingAllReduce(Communicator& comm, Buffer buffer, const RingCodec& codec) {
  if (absl::Status s = CheckBuffer(comm, "ring", buffer); !s.ok()) return s;
  const int n = comm.size();
  const int r = comm.rank();
  const DType wire_dtype = codec.wire_dtype();
  const int64_t wire_size = static_cast<int64_t>(DTypeSize(wire_dtype));
  const int64_t max_wire = codec.WireCount(RingSegmentOf(buffer.count, n, 0).count);
  ScratchBytes send_scratch(max_wire * wire_size), recv_scratch(max_wire * wire_size);
  void* send_wire = send_scratch.data();
  void* recv_wire = recv_scratch.data();
  const auto wire_buffer = [&](void* wire, const RingSegment& seg) {
    return Buffer{wire, codec.WireCount(seg.count), wire_dtype};
  };
  if (n == 1) {
    // The lone owner still adopts what its codec would have sent.
    if (!codec.passthrough()) {
      codec.Encode(buffer.data, buffer.count, send_wire);
      codec.DecodeCopy(send_wire, buffer.count, buffer.data);
    }
    return absl::OkStatus();
  }
  const int next = (r + 1) % n;
  const int prev = (r - 1 + n) % n;
  const auto segment = [&](int s) { return RingSegmentOf(buffer.count, n, ((s % n) + n) % n); };

  // Reduce-scatter: step s sends segment r - s and adds in segment r - s - 1.
  for (int s = 0; s < n - 1; ++s) {
    const RingSegment out = segment(r - s);
    const RingSegment in = segment(r - s - 1);
    ConstBuffer message;
    if (codec.passthrough()) {
      message = ConstBuffer(At(buffer, out.offset), out.count, wire_dtype);
    } else {
      codec.Encode(At(buffer, out.offset), out.count, send_wire);
      message = wire_buffer(send_wire, out);
    }
    const P2POp ops[] = {P2POp::Send(message, next, kRingTag),
                         P2POp::Recv(wire_buffer(recv_wire, in), prev, kRingTag)};
    if (absl::Status s = comm.BatchSendRecv(ops); !s.ok()) return s;
    codec.DecodeAccumulate(recv_wire, in.count, At(buffer, in.offset));
  }

  // All-gather: rank r owns the sum of segment r + 1. It encodes it once and
  // adopts the decoded values; the others forward the bytes they received.
  const RingSegment owned = segment(r + 1);
  codec.Encode(At(buffer, owned.offset), owned.count, send_wire);
  codec.DecodeCopy(send_wire, owned.count, At(buffer, owned.offset));
  for (int s = 0; s < n - 1; ++s) {
    const RingSegment out = segment(r + 1 - s);
    const RingSegment in = segment(r - s);
    const P2POp ops[] = {P2POp::Send(wire_buffer(send_wire, out), next, kRingTag),
                         P2POp::Recv(wire_buffer(recv_wire, in), prev, kRingTag)};
    if (absl::Status s = comm.BatchSendRecv(ops); !s.ok()) return s;
    codec.DecodeCopy(recv_wire, in.count, At(buffer, in.offset));
    std::swap(send_wire, recv_wire);
  }
  return absl::OkStatus();
}

absl::Status RingAllReduce(Communicator& comm, Buffer buffer, ReduceOp op) {
  if (absl::Status s = RingAllReduce(comm, buffer, ElementCodec(buffer.dtype, op)); !s.ok()) {
    return s;
  }
  if (op == ReduceOp::kAvg) DivideInPlace(buffer.data, buffer.count, buffer.dtype, comm.size());
  return absl::OkStatus();
}

absl::Status TreeAllReduce(Communicator& comm, Buffer buffer, ReduceOp op) {
  if (absl::Status s = CheckBuffer(comm, "tree", buffer); !s.ok()) return s;
  const int n = comm.size();
  const int r = comm.rank();
  const int64_t element_size = static_cast<int64_t>(DTypeSize(buffer.dtype));
  const int64_t segment_count = std::max<int64_t>(1, kTreeSegmentBytes / element_size);
  const int64_t num_segments = (buffer.count + segment_count - 1) / segment_count;
  const auto segment = [&](int64_t t) {
    const int64_t offset = t * segment_count;
    return Buffer{At(buffer, offset), std::min(segment_count, buffer.count - offset),
                  buffer.dtype};
  };
  const int parent = r == 0 ? -1 : (r - 1) / 2;
  std::vector<int> children;
  for (int c : {2 * r + 1, 2 * r + 2}) {
    if (c < n) children.push_back(c);
  }
  std::vector<ScratchBytes> from_child;
  for (size_t i = 0; i < children.size(); ++i) {
    from_child.emplace_back(segment_count * element_size);
  }

  // Up: step t receives the children's partial sums of segment t and sends
  // this rank's partial sum of segment t - 1 (finished at step t - 1).
  for (int64_t t = 0; t <= num_segments; ++t) {
    std::vector<P2POp> ops;
    if (t < num_segments) {
      for (size_t i = 0; i < children.size(); ++i) {
        ops.push_back(P2POp::Recv(Buffer{from_child[i].data(), segment(t).count, buffer.dtype},
                                  children[i], kTreeTag));
      }
    }
    if (parent >= 0 && t >= 1) ops.push_back(P2POp::Send(segment(t - 1), parent, kTreeTag));
    if (ops.empty()) continue;
    if (absl::Status s = comm.BatchSendRecv(ops); !s.ok()) return s;
    if (t < num_segments) {
      for (size_t i = 0; i < children.size(); ++i) {
        ReduceInto(segment(t).data, from_child[i].data(), segment(t).count, buffer.dtype, op);
      }
    }
  }
  // Down: step t receives the total of segment t and passes segment t - 1 on.
  for (int64_t t = 0; t <= num_segments; ++t) {
    std::vector<P2POp> ops;
    if (parent >= 0 && t < num_segments) ops.push_back(P2POp::Recv(segment(t), parent, kTreeTag));
    if (t >= 1) {
      for (int c : children) ops.push_back(P2POp::Send(segment(t - 1), c, kTreeTag));
    }
    if (ops.empty()) continue;
    if (absl::Status s = comm.BatchSendRecv(ops); !s.ok()) return s;
  }
  if (op == ReduceOp::kAvg) DivideInPlace(buffer.data, buffer.count, buffer.dtype, n);
  return absl::OkStatus();
}

int64_t RingEquivalentBytesSent(const CommStats& stats, int group_size) {
  const int64_t n = group_size;
  if (n <= 1) return stats.bytes_of(CommOp::kSend);
  return stats.bytes_of(CommOp::kSend) + stats.bytes_of(CommOp::kAllReduce) * 2 * (n - 1) / n +
         (stats.bytes_of(CommOp::kAllGather) + stats.bytes_of(CommOp::kReduceScatter)) * (n - 1) /
             n +
         stats.bytes_of(CommOp::kBroadcast);
}

std::unique_ptr<CommHandle> AllReduceByAlgorithmAsync(Communicator& comm, Buffer buffer,
                                                      ReduceOp op, AllReduceAlgorithm algorithm) {
  switch (algorithm) {
    case AllReduceAlgorithm::kNative:
      return comm.AllReduceAsync(buffer, op);
    case AllReduceAlgorithm::kRing:
      return CompletedHandle(RingAllReduce(comm, buffer, op));
    case AllReduceAlgorithm::kTree:
      return CompletedHandle(TreeAllReduce(comm, buffer, op));
  }
  return CompletedHandle(absl::InternalError("unknown all-reduce algorithm"));
}

}  // namespace trident::comm
