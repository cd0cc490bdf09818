#ifndef TRIDENT_BENCH_COMM_BENCH_LIB_H_
#define TRIDENT_BENCH_COMM_BENCH_LIB_H_

// The pieces of bench/comm_bench that do not need a communicator: which
// collectives, which message sizes, the bus-bandwidth factors, the table format
// (that of nccl-tests), and the memcpy ceiling.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace trident::bench {

enum class BenchOp { kAllReduce, kReduceScatter, kAllGather, kBroadcast, kSendRecv };

// "allreduce", "reducescatter", "allgather", "broadcast", "sendrecv".
absl::string_view BenchOpName(BenchOp op);

// A comma-separated list of BenchOpName()s, or "all". INVALID_ARGUMENT names
// an unknown entry.
absl::StatusOr<std::vector<BenchOp>> ParseBenchOps(absl::string_view list);

// Bus bandwidth = algorithm bandwidth * factor, the factor being what an
// optimal algorithm moves per rank relative to the message (nccl-tests'
// convention): 2(n-1)/n for all-reduce, (n-1)/n for reduce-scatter and
// all-gather, 1 for broadcast and send/recv.
double BusBandwidthFactor(BenchOp op, int ranks);

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
