#ifndef TRIDENT_CORE_COMM_ALLREDUCE_ALGORITHMS_H_
#define TRIDENT_CORE_COMM_ALLREDUCE_ALGORITHMS_H_

// All-reduce algorithms written over a communicator's point-to-point calls
// (BatchSendRecv), next to the backend's native all-reduce. They exist to be
// measured against the native one (bench/comm_bench), to be chosen per bucket
// (the layout's dp_allreduce), and to carry compressed gradients whose hops a
// native collective cannot serve (a ring that adds in fp32 what travelled in
// bf16 or int8: data_parallel/compression/).
//
// - Ring (Patarasuk and Yuan 2009; Baidu's ring all-reduce): the buffer is cut
//   into n segments; n-1 reduce-scatter steps (each rank sends one segment to
//   rank+1 and adds the one it receives from rank-1) leave rank r with the
//   full sum of segment (r+1) mod n, and n-1 all-gather steps circulate the
//   sums. Each rank sends 2(n-1)/n of the buffer: bandwidth-optimal, 2(n-1)
//   latency terms.
// - Tree: a binary tree rooted at rank 0 (parent (r-1)/2, children 2r+1 and
//   2r+2), not NCCL's double binary tree. Sums flow up, the total flows down,
//   both pipelined in segments of kTreeSegmentBytes so that a large message
//   keeps every link busy. Latency 2 ceil(log2(n+1)) - 2 hops, but interior
//   ranks send up to 3x the buffer (once up, twice down), so the ring wins on
//   bandwidth and the tree on latency; bench/comm_bench fits where they cross.
//
// Results. Every member ends with identical bits (the totals are computed
// once, by one rank, and copied). Integer sums, max and min equal the native
// all-reduce bit for bit. Float sums equal it only up to rounding: each
// segment's terms are added in the order its ring or tree imposes (ring:
// starting at the rank after the segment's owner; tree: a node adds its
// children's partial sums to its own), not the native backend's rank order,
// and 16-bit floats are rounded at every hop instead of once. For fp32 the
// difference to any other order is bounded by (n-1) * 2^-24 * sum_r |x_r|
// per element (tests/comm/allreduce_algorithm_suite.cc checks it).

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/comm/communicator.h"

namespace trident::comm {

enum class AllReduceAlgorithm : uint8_t { kNative, kRing, kTree };

// "native", "ring", "tree".
absl::string_view AllReduceAlgorithmName(AllReduceAlgorithm algorithm);
// The inverse; INVALID_ARGUMENT naming the value and the accepted names.
absl::StatusOr<AllReduceAlgorithm> ParseAllReduceAlgorithm(absl::string_view name);

// Tags the algorithms' messages use; callers must not use them concurrently
// on the same communicator.
inline constexpr int kRingTag = 0x7A11;
inline constexpr int kTreeTag = 0x7A12;

// The tree's pipelining segment.
inline constexpr int64_t kTreeSegmentBytes = 256 * 1024;

// How a ring carries one segment: its wire format and how a received segment
// combines into the local one. The plain ring sends elements as they are;
// compressed rings (fp32 data, bf16 or int8 on the wire) encode each
// reduce-scatter hop. In the all-gather the owner of a finished segment
// encodes it once and adopts the decoded values itself; every other rank
// decodes and forwards the bytes it received unchanged, so all members end
// with the same bits whatever the codec loses.
class RingCodec {
 public:
  virtual ~RingCodec() = default;
  // The wire's element type and its element count for a segment of `count`.
  virtual DType wire_dtype() const = 0;
  virtual int64_t WireCount(int64_t count) const = 0;
  // Encodes data[0, count) into `wire`.
  virtual void Encode(const void* data, int64_t count, void* wire) const = 0;
  // data[i] = data[i] op decode(wire)[i].
  virtual void DecodeAccumulate(const void* wire, int64_t count, void* data) const = 0;
  // data[i] = decode(wire)[i].
  virtual void DecodeCopy(const void* wire, int64_t count, void* data) const = 0;
  // True when the wire is the data itself (Encode copies): the ring then
  // sends straight from the buffer.
  virtual bool passthrough() const { return false; }
};

// The ring all-reduce of `buffer` (see the file comment). With a codec the
// codec combines the elements; without one, elements travel as themselves and
// combine with `op` (kAvg divides the sum by size() at the end). Blocking.
absl::Status RingAllReduce(Communicator& comm, Buffer buffer, ReduceOp op);
absl::Status RingAllReduce(Communicator& comm, Buffer buffer, const RingCodec& codec);

// The segment the ring assigns to segment index `s` of `count` elements over
// `n` ranks: the first count % n segments are one element longer.
struct RingSegment {
  int64_t offset = 0;
  int64_t count = 0;
};
RingSegment RingSegmentOf(int64_t count, int n, int s);

// Wire bytes a rank sends in a ring all-reduce of `count` elements: its n-1
// reduce-scatter and n-1 all-gather segments (rank-dependent when count % n
// is not 0). The communicator counts the same bytes as sends and as receives.
int64_t RingBytesSentByRank(const RingCodec& codec, int64_t count, int n, int rank);

// The tree all-reduce of `buffer` (see the file comment). Blocking.
absl::Status TreeAllReduce(Communicator& comm, Buffer buffer, ReduceOp op);

// The bytes a rank of a group of `group_size` put on the wire for what
// `stats` counts, with native collectives counted as their bandwidth-optimal
// ring algorithms send them (the communicator counts their payload, not the
// wire): sends as counted, all-reduce payload * 2(n-1)/n, all-gather output and
// reduce-scatter input * (n-1)/n, broadcast payload * 1 (a pipelined
// broadcast's per-rank figure, as nccl-tests' bus bandwidth).
int64_t RingEquivalentBytesSent(const CommStats& stats, int group_size);

// The all-reduce of `buffer` by `algorithm`. The native one is the backend's
// asynchronous collective; ring and tree run to completion inside this call
// (the returned handle is complete), so they do not overlap with the caller's
// compute.
std::unique_ptr<CommHandle> AllReduceByAlgorithmAsync(Communicator& comm, Buffer buffer,
                                                      ReduceOp op, AllReduceAlgorithm algorithm);

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_ALLREDUCE_ALGORITHMS_H_
