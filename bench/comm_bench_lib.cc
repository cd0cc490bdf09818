#include "bench/comm_bench_lib.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace trident::bench {

absl::string_view BenchOpName(BenchOp op) {
  switch (op) {
    case BenchOp::kAllReduce:
      return "allreduce";
    case BenchOp::kRingAllReduce:
      return "ringallreduce";
    case BenchOp::kTreeAllReduce:
      return "treeallreduce";
    case BenchOp::kReduceScatter:
      return "reducescatter";
    case BenchOp::kAllGather:
      return "allgather";
    case BenchOp::kBroadcast:
      return "broadcast";
    case BenchOp::kSendRecv:
      return "sendrecv";
  }
  return "unknown";
}

absl::StatusOr<std::vector<BenchOp>> ParseBenchOps(absl::string_view list) {
  constexpr BenchOp kAll[] = {BenchOp::kAllReduce,     BenchOp::kRingAllReduce,
                              BenchOp::kTreeAllReduce, BenchOp::kReduceScatter,
                              BenchOp::kAllGather,     BenchOp::kBroadcast,
                              BenchOp::kSendRecv};
  if (absl::StripAsciiWhitespace(list) == "all") {
    return std::vector<BenchOp>(std::begin(kAll), std::end(kAll));
  }
  std::vector<BenchOp> ops;
  for (absl::string_view name : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    const BenchOp* found = std::find_if(std::begin(kAll), std::end(kAll),
                                        [&](BenchOp op) { return BenchOpName(op) == name; });
    if (found == std::end(kAll)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--ops: '", name,
          "' is not a collective; use all or a list of allreduce, ringallreduce, "
          "treeallreduce, reducescatter, allgather, broadcast, sendrecv"));
    }
    ops.push_back(*found);
  }
  if (ops.empty()) return absl::InvalidArgumentError("--ops is empty");
  return ops;
}

double BusBandwidthFactor(BenchOp op, int ranks) {
  const double n = ranks;
  switch (op) {
    case BenchOp::kAllReduce:
    case BenchOp::kRingAllReduce:
    case BenchOp::kTreeAllReduce:
      return 2.0 * (n - 1) / n;
    case BenchOp::kReduceScatter:
    case BenchOp::kAllGather:
      return (n - 1) / n;
    case BenchOp::kBroadcast:
    case BenchOp::kSendRecv:
      return 1.0;
  }
  return 1.0;
}

AllReduceCostTerms RingCostTerms(int ranks) {
  return AllReduceCostTerms{.latency_terms = 2.0 * (ranks - 1),
                            .bandwidth_factor = 2.0 * (ranks - 1) / ranks};
}

AllReduceCostTerms TreeCostTerms(int ranks) {
  int depth = 0;
  while ((2 << depth) <= ranks) ++depth;  // floor(log2 ranks).
  return AllReduceCostTerms{.latency_terms = 2.0 * depth,
                            .bandwidth_factor = 2.0 * std::min(2, ranks - 1)};
}

absl::StatusOr<AlphaBeta> FitAlphaBeta(const AllReduceCostTerms& terms, double small_bytes,
                                       double small_time_s, double large_bytes,
                                       double large_time_s) {
  if (!(small_bytes > 0 && small_bytes < large_bytes && small_time_s > 0 && large_time_s > 0 &&
        terms.latency_terms > 0 && terms.bandwidth_factor > 0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "alpha-beta fit needs 0 < small bytes < large bytes, positive times and terms; got "
        "%g B in %g s, %g B in %g s, %g latency terms, bandwidth factor %g",
        small_bytes, small_time_s, large_bytes, large_time_s, terms.latency_terms,
        terms.bandwidth_factor));
  }
  AlphaBeta fit;
  fit.alpha_s = small_time_s / terms.latency_terms;
  fit.beta_s_per_byte =
      (large_time_s - terms.latency_terms * fit.alpha_s) / (terms.bandwidth_factor * large_bytes);
  return fit;
}

double PredictSeconds(const AllReduceCostTerms& terms, const AlphaBeta& link, double bytes) {
  return terms.latency_terms * link.alpha_s + terms.bandwidth_factor * bytes * link.beta_s_per_byte;
}

std::optional<double> TreeBeatsRingBelowBytes(int ranks, const AlphaBeta& link) {
  const AllReduceCostTerms ring = RingCostTerms(ranks);
  const AllReduceCostTerms tree = TreeCostTerms(ranks);
  // ring(B) - tree(B) = alpha * dL - beta * dF * B, positive (tree faster)
  // for B < alpha * dL / (beta * dF).
  const double latency_saved = (ring.latency_terms - tree.latency_terms) * link.alpha_s;
  const double bandwidth_lost =
      (tree.bandwidth_factor - ring.bandwidth_factor) * link.beta_s_per_byte;
  if (latency_saved <= 0 || bandwidth_lost <= 0) return std::nullopt;
  return latency_saved / bandwidth_lost;
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  absl::string_view digits = absl::StripAsciiWhitespace(text);
  int64_t unit = 1;
  struct Suffix {
    absl::string_view text;
    int64_t unit;
  };
  for (const Suffix& suffix : {Suffix{"KiB", int64_t{1} << 10}, Suffix{"MiB", int64_t{1} << 20},
                               Suffix{"GiB", int64_t{1} << 30}, Suffix{"K", int64_t{1} << 10},
                               Suffix{"M", int64_t{1} << 20}, Suffix{"G", int64_t{1} << 30}}) {
    if (absl::EndsWith(digits, suffix.text)) {
      digits.remove_suffix(suffix.text.size());
      unit = suffix.unit;
      break;
    }
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value < 1 || value > (int64_t{1} << 40) / unit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "byte size '", text, "' is not a positive integer with an optional K, M or G suffix"));
  }
  return value * unit;
}

absl::StatusOr<std::vector<int64_t>> MessageSizes(int64_t min_bytes, int64_t max_bytes,
                                                  int step_factor) {
  if (min_bytes < 1 || max_bytes < min_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("--min_bytes=", min_bytes, " and --max_bytes=",
                                                   max_bytes, " must satisfy 1 <= min <= max"));
  }
  if (step_factor < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("--step_factor=", step_factor, " must be at least 2"));
  }
  std::vector<int64_t> sizes;
  for (int64_t bytes = min_bytes; bytes <= max_bytes; bytes *= step_factor) {
    sizes.push_back(bytes);
    if (bytes > max_bytes / step_factor) break;
  }
  if (sizes.back() != max_bytes) sizes.push_back(max_bytes);
  return sizes;
}

std::string FormatTableHeader() {
  return absl::StrFormat(
      "#%12s %12s %6s %6s %10s %8s %8s %8s %8s %7s\n"
      "#%12s %12s %6s %6s %10s %8s %8s %8s %8s %7s\n",
      "size", "count", "type", "redop", "time", "algbw", "busbw", "memcpy", "busbw/", "#wrong",
      "(B)", "(elements)", "", "", "(us)", "(GB/s)", "(GB/s)", "(GB/s)", "memcpy", "");
}

std::string FormatTableRow(const BenchRow& row) {
  const double ratio = row.memcpy_gbps > 0 ? row.busbw_gbps / row.memcpy_gbps : 0.0;
  return absl::StrFormat(" %12d %12d %6s %6s %10.1f %8.2f %8.2f %8.2f %8.3f %7d\n", row.bytes,
                         row.count, row.type, row.redop, row.time_us, row.algbw_gbps,
                         row.busbw_gbps, row.memcpy_gbps, ratio, row.wrong);
}

double MeasureMemcpyGBps(int64_t bytes, absl::Duration min_time) {
  auto src = std::make_unique<char[]>(bytes);
  auto dst = std::make_unique<char[]>(bytes);
  std::memset(src.get(), 1, bytes);
  std::memcpy(dst.get(), src.get(), bytes);  // Faults the destination in.
  // Small copies are timed in batches, so that reading the clock does not
  // dominate.
  const int64_t batch = std::max<int64_t>(1, (int64_t{1} << 20) / bytes);
  int64_t copies = 0;
  const absl::Time start = absl::Now();
  absl::Duration elapsed;
  do {
    for (int64_t i = 0; i < batch; ++i) {
      std::memcpy(dst.get(), src.get(), bytes);
      // Keeps the compiler from dropping copies whose result is never read.
      asm volatile("" : : "r"(dst.get()) : "memory");
    }
    copies += batch;
    elapsed = absl::Now() - start;
  } while (copies < 3 || elapsed < min_time);
  return static_cast<double>(bytes) * copies / absl::ToDoubleSeconds(elapsed) / 1e9;
}

}  // namespace trident::bench
