// comm_bench: bus bandwidth of every collective per message size and backend,
// printed like nccl-tests, next to the single-thread memcpy bandwidth measured
// in the same run as the ceiling to compare with. Not a test.
//
//   bazel run //bench:comm_bench -- --backend=local --ranks=4
//   bazel build //bench:comm_bench
//   mpirun --allow-run-as-root --oversubscribe -np 4 bazel-bin/bench/comm_bench --backend=mpi
//
// Method, per collective and size: every rank fills its buffers, runs one
// checked operation (known inputs, exact expected outputs: the #wrong column),
// then --warmup_iters untimed ones; the iteration count is chosen from the
// warm-up time so that a size takes about --seconds_per_size (between
// --min_iters and --iters); after a barrier each rank times that many
// operations back to back (each waited before the next). time = the mean per
// operation on the slowest rank. algbw = size / time; busbw = algbw * factor
// (2(n-1)/n all-reduce, (n-1)/n reduce-scatter and all-gather, 1 broadcast and
// send/recv). send/recv is a ping-pong between ranks 2i and 2i+1 (all pairs at
// once); its time is half a round trip. The memcpy column is std::memcpy on
// one thread between two buffers of the same size, measured first, alone.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/comm_bench_lib.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/comm/mpi/mpi_communicator.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/dtype.h"
#include "core/status_macros.h"

ABSL_FLAG(std::string, backend, "local", "local (threads of this process) or mpi (under mpirun)");
ABSL_FLAG(int, ranks, 4, "number of ranks for --backend=local (mpi: mpirun's -np)");
ABSL_FLAG(std::string, ops, "all",
          "comma-separated: allreduce, ringallreduce, treeallreduce, reducescatter, allgather, "
          "broadcast, sendrecv; or all");
ABSL_FLAG(std::string, min_bytes, "8", "smallest message, e.g. 8, 4K, 1M");
ABSL_FLAG(std::string, max_bytes, "64M", "largest message");
ABSL_FLAG(int, step_factor, 4, "each message size is this times the previous one");
ABSL_FLAG(std::string, dtype, "fp32", "element type: fp32, bf16, fp16, int32, int64");
ABSL_FLAG(std::string, redop, "sum",
          "reduction of all-reduce and reduce-scatter: sum, avg, max, min");
ABSL_FLAG(int, warmup_iters, 2, "untimed operations per size before timing");
ABSL_FLAG(int, min_iters, 3, "fewest timed operations per size");
ABSL_FLAG(int, iters, 200, "most timed operations per size");
ABSL_FLAG(double, seconds_per_size, 0.3, "aimed timed duration per size (sets the iterations)");
ABSL_FLAG(int, timeout_s, 600, "communicator timeout in seconds");

namespace trident::bench {
namespace {

using comm::Buffer;
using comm::CommHandle;
using comm::Communicator;
using comm::ConstBuffer;
using comm::ReduceOp;

struct Config {
  std::vector<BenchOp> ops;
  std::vector<int64_t> sizes;
  DType dtype = DType::kFloat32;
  ReduceOp redop = ReduceOp::kSum;
  int warmup_iters = 3;
  int min_iters = 3;
  int max_iters = 200;
  double seconds_per_size = 0.3;
  std::map<int64_t, double> memcpy_gbps;  // By message size, measured by rank 0.
};

absl::StatusOr<ReduceOp> ParseReduceOp(absl::string_view name) {
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    if (comm::ReduceOpName(op) == name) return op;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--redop='", name, "' is not one of sum, avg, max, min"));
}

// nccl-tests' type names.
std::string TypeName(DType dtype) {
  return dtype == DType::kFloat32 ? "float" : std::string(DTypeName(dtype));
}

// An element buffer of `count` elements of `dtype`, 64-byte aligned.
class Elements {
 public:
  Elements(DType dtype, int64_t count)
      : dtype_(dtype),
        count_(count),
        storage_(static_cast<size_t>(std::max<int64_t>(1, count * DTypeSize(dtype) / 8 + 8))) {}

  Buffer buffer() { return Buffer{storage_.data(), count_, dtype_}; }
  Buffer slice(int64_t offset, int64_t count) {
    return Buffer{static_cast<char*>(static_cast<void*>(storage_.data())) +
                      offset * static_cast<int64_t>(DTypeSize(dtype_)),
                  count, dtype_};
  }

  void Fill(double value) {
    for (int64_t i = 0; i < count_; ++i) Set(i, value);
  }
  void Set(int64_t i, double value) {
    char* p = static_cast<char*>(static_cast<void*>(storage_.data())) + i * DTypeSize(dtype_);
    switch (dtype_) {
      case DType::kFloat32: {
        const float v = static_cast<float>(value);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kBFloat16: {
        const BFloat16 v = ToBFloat16(static_cast<float>(value));
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kFloat16: {
        const Float16 v = ToFloat16(static_cast<float>(value));
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kInt32: {
        const int32_t v = static_cast<int32_t>(value);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
      case DType::kInt64: {
        const int64_t v = static_cast<int64_t>(value);
        std::memcpy(p, &v, sizeof(v));
        break;
      }
    }
  }
  double Get(int64_t i) const {
    const char* p =
        static_cast<const char*>(static_cast<const void*>(storage_.data())) + i * DTypeSize(dtype_);
    switch (dtype_) {
      case DType::kFloat32: {
        float v;
        std::memcpy(&v, p, sizeof(v));
        return v;
      }
      case DType::kBFloat16: {
        BFloat16 v;
        std::memcpy(&v, p, sizeof(v));
        return ToFloat(v);
      }
      case DType::kFloat16: {
        Float16 v;
        std::memcpy(&v, p, sizeof(v));
        return ToFloat(v);
      }
      case DType::kInt32: {
        int32_t v;
        std::memcpy(&v, p, sizeof(v));
        return v;
      }
      case DType::kInt64: {
        int64_t v;
        std::memcpy(&v, p, sizeof(v));
        return static_cast<double>(v);
      }
    }
    return 0;
  }
  // Elements in [begin, end) that differ from `expected`.
  int64_t CountWrong(int64_t begin, int64_t end, double expected) const {
    int64_t wrong = 0;
    for (int64_t i = begin; i < end; ++i) wrong += Get(i) != expected;
    return wrong;
  }

 private:
  DType dtype_;
  int64_t count_;
  std::vector<uint64_t> storage_;
};

// The reduction over ranks 1..n of the values r (rank r - 1 contributes r), as
// the backends define it; exact for every dtype while n(n+1)/2 <= 256.
double ExpectedReduction(ReduceOp op, DType dtype, int n) {
  const double sum = n * (n + 1) / 2.0;
  switch (op) {
    case ReduceOp::kSum:
      return sum;
    case ReduceOp::kMax:
      return n;
    case ReduceOp::kMin:
      return 1;
    case ReduceOp::kAvg:
      if (dtype == DType::kInt32 || dtype == DType::kInt64) {
        return static_cast<double>(static_cast<int64_t>(sum) / n);
      }
      return sum / n;
  }
  return 0;
}

// One collective at one size on this rank: its buffers and how to run it.
class Case {
 public:
  Case(Communicator& comm, BenchOp op, const Config& config, int64_t bytes)
      : comm_(comm), op_(op), config_(config) {
    const int n = comm.size();
    const int64_t elem = DTypeSize(config.dtype);
    // Rows report the size actually moved: all-gather and reduce-scatter
    // round down to a multiple of n elements.
    switch (op) {
      case BenchOp::kAllReduce:
      case BenchOp::kRingAllReduce:
      case BenchOp::kTreeAllReduce:
      case BenchOp::kBroadcast:
      case BenchOp::kSendRecv:
        count_ = bytes / elem;
        per_rank_ = count_;
        break;
      case BenchOp::kReduceScatter:
      case BenchOp::kAllGather:
        per_rank_ = bytes / (elem * n);
        count_ = per_rank_ * n;
        break;
    }
    big_ = std::make_unique<Elements>(config.dtype, count_);
    if (op == BenchOp::kReduceScatter || op == BenchOp::kAllGather) {
      small_ = std::make_unique<Elements>(config.dtype, per_rank_);
    }
    const int me = comm.rank();
    if (op == BenchOp::kSendRecv) partner_ = (me % 2 == 0) ? (me + 1 < n ? me + 1 : -1) : me - 1;
  }

  int64_t count() const { return count_; }
  int64_t bytes() const { return count_ * static_cast<int64_t>(DTypeSize(config_.dtype)); }
  bool runnable() const { return count_ > 0 && (op_ != BenchOp::kSendRecv || comm_.size() >= 2); }

  // Fills inputs with rank + 1, runs once, counts wrong output elements.
  absl::StatusOr<int64_t> RunChecked() {
    const int me = comm_.rank();
    const int n = comm_.size();
    const double mine = me + 1;
    switch (op_) {
      case BenchOp::kAllReduce:
      case BenchOp::kRingAllReduce:
      case BenchOp::kTreeAllReduce:
        big_->Fill(mine);
        RETURN_IF_ERROR(RunOnce());
        return big_->CountWrong(0, count_, ExpectedReduction(config_.redop, config_.dtype, n));
      case BenchOp::kReduceScatter:
        big_->Fill(mine);
        small_->Fill(-1);
        RETURN_IF_ERROR(RunOnce());
        return small_->CountWrong(0, per_rank_, ExpectedReduction(config_.redop, config_.dtype, n));
      case BenchOp::kAllGather: {
        small_->Fill(mine);
        big_->Fill(-1);
        RETURN_IF_ERROR(RunOnce());
        int64_t wrong = 0;
        for (int r = 0; r < n; ++r) {
          wrong += big_->CountWrong(r * per_rank_, (r + 1) * per_rank_, r + 1);
        }
        return wrong;
      }
      case BenchOp::kBroadcast:
        big_->Fill(mine);
        RETURN_IF_ERROR(RunOnce());
        return big_->CountWrong(0, count_, 1);  // Root 0 holds 1.
      case BenchOp::kSendRecv:
        big_->Fill(mine);
        RETURN_IF_ERROR(RunOnce());
        // The even rank's buffer comes back from its partner unchanged.
        if (partner_ < 0) return int64_t{0};
        return big_->CountWrong(0, count_, me % 2 == 0 ? mine : partner_ + 1);
    }
    return int64_t{0};
  }

  // Zero inputs for the timed runs: sums stay zero however many times an
  // in-place all-reduce runs, so no overflow or special values slow anything.
  void ZeroInputs() {
    big_->Fill(0);
    if (small_) small_->Fill(0);
  }

  absl::Status RunOnce() {
    switch (op_) {
      case BenchOp::kAllReduce:
        return comm_.AllReduce(big_->buffer(), config_.redop);
      case BenchOp::kRingAllReduce:
        return comm::RingAllReduce(comm_, big_->buffer(), config_.redop);
      case BenchOp::kTreeAllReduce:
        return comm::TreeAllReduce(comm_, big_->buffer(), config_.redop);
      case BenchOp::kReduceScatter:
        return comm_.ReduceScatter(ConstBuffer(big_->buffer()), small_->buffer(), config_.redop);
      case BenchOp::kAllGather:
        return comm_.AllGather(ConstBuffer(small_->buffer()), big_->buffer());
      case BenchOp::kBroadcast:
        return comm_.Broadcast(big_->buffer(), 0);
      case BenchOp::kSendRecv: {
        // Even ranks send and get the message back; odd ranks return it.
        if (partner_ < 0) return absl::OkStatus();
        const int tag = 11;
        if (comm_.rank() % 2 == 0) {
          RETURN_IF_ERROR(comm_.Send(ConstBuffer(big_->buffer()), partner_, tag));
          return comm_.Recv(big_->buffer(), partner_, tag);
        }
        RETURN_IF_ERROR(comm_.Recv(big_->buffer(), partner_, tag));
        return comm_.Send(ConstBuffer(big_->buffer()), partner_, tag);
      }
    }
    return absl::OkStatus();
  }

 private:
  Communicator& comm_;
  BenchOp op_;
  const Config& config_;
  int64_t count_ = 0;
  int64_t per_rank_ = 0;
  int partner_ = -1;
  std::unique_ptr<Elements> big_;
  std::unique_ptr<Elements> small_;
};

// The largest of every rank's `value` (an all-reduce max on int64).
absl::StatusOr<int64_t> MaxOverRanks(Communicator& comm, int64_t value) {
  std::vector<int64_t> v = {value};
  RETURN_IF_ERROR(comm.AllReduce(comm::MakeBuffer(absl::MakeSpan(v)), ReduceOp::kMax));
  return v[0];
}

absl::StatusOr<int64_t> SumOverRanks(Communicator& comm, int64_t value) {
  std::vector<int64_t> v = {value};
  RETURN_IF_ERROR(comm.AllReduce(comm::MakeBuffer(absl::MakeSpan(v)), ReduceOp::kSum));
  return v[0];
}

bool IsAllReduce(BenchOp op) {
  return op == BenchOp::kAllReduce || op == BenchOp::kRingAllReduce ||
         op == BenchOp::kTreeAllReduce;
}

// Measured seconds per operation, by op and message bytes (rank 0's record).
using Timings = std::map<BenchOp, std::map<int64_t, double>>;

// The alpha-beta model fitted to this run's ring (alpha from its smallest
// message, beta from its largest), its predictions for ring and tree next to
// what they measured, and the crossover size below which the tree is
// predicted, and was measured, faster.
void PrintAllReduceModel(const Timings& timings, int n) {
  const auto ring = timings.find(BenchOp::kRingAllReduce);
  if (n < 2 || ring == timings.end() || ring->second.size() < 2) return;
  const auto [small_bytes, small_s] = *ring->second.begin();
  const auto [large_bytes, large_s] = *ring->second.rbegin();
  const absl::StatusOr<AlphaBeta> link =
      FitAlphaBeta(RingCostTerms(n), small_bytes, small_s, large_bytes, large_s);
  if (!link.ok()) {
    std::printf("#\n# alpha-beta model: not fitted (%s)\n", link.status().ToString().c_str());
    return;
  }
  const AllReduceCostTerms ring_terms = RingCostTerms(n);
  const AllReduceCostTerms tree_terms = TreeCostTerms(n);
  std::printf(
      "#\n# alpha-beta model, ranks=%d: time = L*alpha + F*bytes*beta; ring L=%g F=%g, tree "
      "L=%g F=%g\n# fitted to the ring: alpha=%.3f us (from %lld B), beta=%.4f ns/B = %.2f GB/s "
      "(from %lld B)\n",
      n, ring_terms.latency_terms, ring_terms.bandwidth_factor, tree_terms.latency_terms,
      tree_terms.bandwidth_factor, link->alpha_s * 1e6, static_cast<long long>(small_bytes),
      link->beta_s_per_byte * 1e9, 1e-9 / link->beta_s_per_byte,
      static_cast<long long>(large_bytes));
  std::printf("# %12s %12s %12s %12s %12s %12s\n", "size (B)", "native (us)", "ring (us)",
              "ring model", "tree (us)", "tree model");
  const auto measured = [&](BenchOp op, int64_t bytes) {
    const auto it = timings.find(op);
    if (it == timings.end()) return std::string("-");
    const auto at = it->second.find(bytes);
    return at == it->second.end() ? std::string("-") : absl::StrFormat("%.1f", at->second * 1e6);
  };
  int64_t largest_tree_win = -1;
  int tree_wins = 0;
  for (const auto& [bytes, ring_s] : ring->second) {
    std::printf("# %12lld %12s %12.1f %12.1f %12s %12.1f\n", static_cast<long long>(bytes),
                measured(BenchOp::kAllReduce, bytes).c_str(), ring_s * 1e6,
                PredictSeconds(ring_terms, *link, bytes) * 1e6,
                measured(BenchOp::kTreeAllReduce, bytes).c_str(),
                PredictSeconds(tree_terms, *link, bytes) * 1e6);
    const auto tree = timings.find(BenchOp::kTreeAllReduce);
    if (tree == timings.end()) continue;
    const auto tree_at = tree->second.find(bytes);
    if (tree_at != tree->second.end() && tree_at->second < ring_s) {
      ++tree_wins;
      largest_tree_win = bytes;
    }
  }
  const std::optional<double> crossover = TreeBeatsRingBelowBytes(n, *link);
  if (crossover.has_value()) {
    std::printf("# predicted: tree faster than ring below %.0f B\n", *crossover);
  } else {
    std::printf("# predicted: tree never faster than ring at %d ranks (no fewer latency terms)\n",
                n);
  }
  if (timings.count(BenchOp::kTreeAllReduce) > 0) {
    if (largest_tree_win < 0) {
      std::printf("# measured: tree faster than ring at no size\n");
    } else {
      std::printf("# measured: tree faster than ring at %d of %zu sizes, the largest %lld B\n",
                  tree_wins, ring->second.size(), static_cast<long long>(largest_tree_win));
    }
  }
  std::fflush(stdout);
}

// Runs the whole benchmark on one rank; rank 0 prints.
absl::Status RunBench(Communicator& comm, const Config& config) {
  const bool printer = comm.rank() == 0;
  const int n = comm.size();
  Timings timings;
  for (BenchOp op : config.ops) {
    if (printer) {
      std::printf(
          "#\n# %s  backend=%s ranks=%d  busbw = algbw * %s\n", BenchOpName(op).data(),
          std::string(comm.backend()).c_str(), n,
          IsAllReduce(op)
              ? "2(n-1)/n"
              : (op == BenchOp::kReduceScatter || op == BenchOp::kAllGather ? "(n-1)/n" : "1"));
      std::printf("%s", FormatTableHeader().c_str());
      std::fflush(stdout);
    }
    for (int64_t size : config.sizes) {
      Case c(comm, op, config, size);
      if (!c.runnable()) continue;
      ASSIGN_OR_RETURN(const int64_t wrong_here, c.RunChecked());
      ASSIGN_OR_RETURN(const int64_t wrong, SumOverRanks(comm, wrong_here));
      c.ZeroInputs();
      RETURN_IF_ERROR(comm.Barrier());
      absl::Time start = absl::Now();
      for (int i = 0; i < config.warmup_iters; ++i) RETURN_IF_ERROR(c.RunOnce());
      const int64_t warm_ns =
          absl::ToInt64Nanoseconds(absl::Now() - start) / std::max(1, config.warmup_iters);
      // Every rank must run the same number of iterations: decide on the
      // slowest rank's warm-up.
      ASSIGN_OR_RETURN(const int64_t slowest_warm_ns, MaxOverRanks(comm, warm_ns));
      const int iters = static_cast<int>(
          std::clamp<double>(config.seconds_per_size * 1e9 / std::max<int64_t>(1, slowest_warm_ns),
                             config.min_iters, config.max_iters));
      RETURN_IF_ERROR(comm.Barrier());
      start = absl::Now();
      for (int i = 0; i < iters; ++i) RETURN_IF_ERROR(c.RunOnce());
      const int64_t total_ns = absl::ToInt64Nanoseconds(absl::Now() - start);
      ASSIGN_OR_RETURN(const int64_t slowest_ns, MaxOverRanks(comm, total_ns));
      if (!printer) continue;
      BenchRow row;
      row.bytes = c.bytes();
      row.count = c.count();
      row.type = TypeName(config.dtype);
      row.redop = (IsAllReduce(op) || op == BenchOp::kReduceScatter)
                      ? std::string(comm::ReduceOpName(config.redop))
                      : "-";
      // A ping-pong iteration is a round trip: time one way.
      const double per_op_ns =
          static_cast<double>(slowest_ns) / iters / (op == BenchOp::kSendRecv ? 2.0 : 1.0);
      row.time_us = per_op_ns / 1e3;
      timings[op][row.bytes] = per_op_ns / 1e9;
      row.algbw_gbps = static_cast<double>(row.bytes) / per_op_ns;  // bytes/ns = GB/s.
      row.busbw_gbps = row.algbw_gbps * BusBandwidthFactor(op, n);
      auto memcpy_it = config.memcpy_gbps.find(size);
      row.memcpy_gbps = memcpy_it == config.memcpy_gbps.end() ? 0.0 : memcpy_it->second;
      row.wrong = wrong;
      std::printf("%s", FormatTableRow(row).c_str());
      std::fflush(stdout);
    }
  }
  if (printer) PrintAllReduceModel(timings, n);
  return absl::OkStatus();
}

void MeasureMemcpy(Config& config) {
  for (int64_t size : config.sizes) {
    config.memcpy_gbps[size] = MeasureMemcpyGBps(size, absl::Milliseconds(50));
  }
}

void PrintPreamble(const Config& config, absl::string_view backend, int ranks) {
  std::printf(
      "# trident comm_bench: backend=%s ranks=%d dtype=%s redop=%s warmup=%d iters=%d..%d "
      "(~%.2f s per size)\n"
      "# time: mean per operation over the timed iterations, on the slowest rank; GB/s = 1e9 "
      "B/s\n"
      "# memcpy: single-thread std::memcpy bandwidth at the same size, measured first in this "
      "run\n",
      std::string(backend).c_str(), ranks, std::string(DTypeName(config.dtype)).c_str(),
      std::string(comm::ReduceOpName(config.redop)).c_str(), config.warmup_iters, config.min_iters,
      config.max_iters, config.seconds_per_size);
  std::fflush(stdout);
}

absl::Status RunLocal(Config& config, comm::CommOptions options) {
  const int ranks = absl::GetFlag(FLAGS_ranks);
  if (ranks < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--ranks=", ranks, " must be at least 1"));
  }
  MeasureMemcpy(config);
  PrintPreamble(config, "local", ranks);
  return comm::RunLocalRanks(
      ranks, [&](int, Communicator& world) { return RunBench(world, config); }, options);
}

absl::Status RunMpi(Config& config, comm::CommOptions options, int* argc, char*** argv) {
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiRuntime> runtime,
                   comm::MpiRuntime::Initialize(argc, argv));
  ASSIGN_OR_RETURN(std::unique_ptr<comm::MpiCommunicator> world,
                   comm::MpiCommunicator::CreateWorld(options));
  // Rank 0 measures memcpy alone while the others wait.
  if (world->rank() == 0) {
    MeasureMemcpy(config);
    PrintPreamble(config, "mpi", world->size());
  }
  RETURN_IF_ERROR(world->Barrier());
  const absl::Status status = RunBench(*world, config);
  world.reset();
  runtime.reset();
  return status;
}

absl::Status Main(int argc, char** argv) {
  Config config;
  ASSIGN_OR_RETURN(config.ops, ParseBenchOps(absl::GetFlag(FLAGS_ops)));
  ASSIGN_OR_RETURN(const int64_t min_bytes, ParseByteSize(absl::GetFlag(FLAGS_min_bytes)));
  ASSIGN_OR_RETURN(const int64_t max_bytes, ParseByteSize(absl::GetFlag(FLAGS_max_bytes)));
  ASSIGN_OR_RETURN(config.sizes,
                   MessageSizes(min_bytes, max_bytes, absl::GetFlag(FLAGS_step_factor)));
  ASSIGN_OR_RETURN(config.dtype, ParseDType(absl::GetFlag(FLAGS_dtype)));
  ASSIGN_OR_RETURN(config.redop, ParseReduceOp(absl::GetFlag(FLAGS_redop)));
  config.warmup_iters = absl::GetFlag(FLAGS_warmup_iters);
  config.min_iters = absl::GetFlag(FLAGS_min_iters);
  config.max_iters = absl::GetFlag(FLAGS_iters);
  config.seconds_per_size = absl::GetFlag(FLAGS_seconds_per_size);
  if (config.warmup_iters < 0 || config.min_iters < 1 || config.max_iters < config.min_iters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--warmup_iters=", config.warmup_iters, " --min_iters=", config.min_iters,
        " --iters=", config.max_iters, ": need warmup >= 0 and 1 <= min_iters <= iters"));
  }
  comm::CommOptions options;
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (backend == "local") return RunLocal(config, options);
  if (backend == "mpi") return RunMpi(config, options, &argc, &argv);
  return absl::InvalidArgumentError(
      absl::StrCat("--backend='", backend, "' is not one of local, mpi"));
}

}  // namespace
}  // namespace trident::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::bench::Main(argc, argv);
  if (!status.ok()) {
    std::fprintf(stderr, "comm_bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
