#ifndef TRIDENT_BENCH_COMM_BENCH_LIB_H_
#define TRIDENT_BENCH_COMM_BENCH_LIB_H_

// The pieces of bench/comm_bench that do not need a communicator: which
// collectives, which message sizes, the bus-bandwidth factors, the table format
// (that of nccl-tests), and the memcpy ceiling.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trident::bench {

// The all-reduce three ways: the backend's native collective, and the ring and
// tree written over point-to-point calls (core/comm/allreduce_algorithms.h).
enum class BenchOp {
  kAllReduce,
  kRingAllReduce,
  kTreeAllReduce,
  kReduceScatter,
  kAllGather,
  kBroadcast,
  kSendRecv
};

// "allreduce", "ringallreduce", "treeallreduce", "reducescatter", "allgather",
// "broadcast", "sendrecv".
absl::string_view BenchOpName(BenchOp op);

// A comma-separated list of BenchOpName()s, or "all". INVALID_ARGUMENT names
// an unknown entry.
absl::StatusOr<std::vector<BenchOp>> ParseBenchOps(absl::string_view list);

// Bus bandwidth = algorithm bandwidth * factor, the factor being what an
// optimal algorithm moves per rank relative to the message (nccl-tests'
// convention): 2(n-1)/n for all-reduce (whatever the algorithm), (n-1)/n for reduce-scatter and
// all-gather, 1 for broadcast and send/recv.
double BusBandwidthFactor(BenchOp op, int ranks);

// The alpha-beta (Hockney) model of an all-reduce algorithm on n ranks:
// time(B) = latency_terms * alpha + bandwidth_factor * B * beta, where alpha
// is one message's start-up time and beta the time per byte on one rank's
// link.
//   ring: 2(n-1) latency terms, 2(n-1)/n bytes per byte of the buffer;
//   tree (binary, pipelined, core/comm/allreduce_algorithms.h):
//     2 * floor(log2 n) latency terms (up and down the tree's depth), and
//     2 * min(2, n-1) bytes per byte: an interior rank takes in two children's
//     segments per step going up and sends two going down.
struct AllReduceCostTerms {
  double latency_terms = 0;
  double bandwidth_factor = 0;
};
AllReduceCostTerms RingCostTerms(int ranks);
AllReduceCostTerms TreeCostTerms(int ranks);

// alpha (s) and beta (s/B) fitted to two measurements of one algorithm:
// alpha from the smallest message (whose bandwidth term is neglected:
// alpha = time / latency_terms), beta from the largest (what the latency terms
// leave: beta = (time - latency_terms * alpha) / (bandwidth_factor * bytes)).
struct AlphaBeta {
  double alpha_s = 0;
  double beta_s_per_byte = 0;
};
// INVALID_ARGUMENT unless 0 < small_bytes < large_bytes, the times are
// positive and the terms are (a one-rank "all-reduce" has no terms).
absl::StatusOr<AlphaBeta> FitAlphaBeta(const AllReduceCostTerms& terms, double small_bytes,
                                       double small_time_s, double large_bytes,
                                       double large_time_s);
double PredictSeconds(const AllReduceCostTerms& terms, const AlphaBeta& link, double bytes);

// The message size (bytes) below which the tree is predicted faster than the
// ring on one link (alpha, beta): where their lines cross. Absent (nullopt)
// when one algorithm is never faster (fewer ranks than make the tree's latency
// smaller).
std::optional<double> TreeBeatsRingBelowBytes(int ranks, const AlphaBeta& link);

// "4096", "64K", "64M", "1G" (powers of 1024; "KiB"/"MiB"/"GiB" work too).
// INVALID_ARGUMENT for anything else or a value below 1.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// min, min*factor, min*factor^2, ... while at most max, then max itself when
// the steps miss it (8 B to 64 MiB by 4 ends 8M, 32M, 64M).
// INVALID_ARGUMENT unless 1 <= min <= max and factor >= 2.
absl::StatusOr<std::vector<int64_t>> MessageSizes(int64_t min_bytes, int64_t max_bytes,
                                                  int step_factor);

// One line of the table.
struct BenchRow {
  int64_t bytes = 0;  // The message: the buffer (all-reduce, broadcast, p2p),
                      // the gathered output (all-gather), the unreduced input
                      // (reduce-scatter).
  int64_t count = 0;  // Elements of that message.
  std::string type;   // "float", "bf16", ...
  std::string redop;  // "sum", ..., or "-" for ops without a reduction.
  double time_us = 0;
  double algbw_gbps = 0;  // bytes / time, in GB/s (1e9 bytes per second).
  double busbw_gbps = 0;
  double memcpy_gbps = 0;  // The single-thread memcpy ceiling at this size.
  int64_t wrong = 0;       // Elements with a wrong result in the check run.
};

// The two header lines and one formatted row, aligned like nccl-tests.
std::string FormatTableHeader();
std::string FormatTableRow(const BenchRow& row);

// Single-thread std::memcpy bandwidth (GB/s) between two buffers of `bytes`,
// the mean over as many copies as fit in `min_time` (at least 3), after one
// untimed copy that faults the pages in.
double MeasureMemcpyGBps(int64_t bytes, absl::Duration min_time);

}  // namespace trident::bench

#endif  // TRIDENT_BENCH_COMM_BENCH_LIB_H_
