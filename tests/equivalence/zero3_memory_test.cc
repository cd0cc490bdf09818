// ZeRO stage 3 keeps 1 / dp of the parameter values on each rank between
// steps: an instrumented run of the trainer's own StepRunner counts, per
// rank, the bytes of parameter storage the rank actually holds after every
// step (every Parameter's own value tensor, which must be gone, plus the
// reducer's value shards and any bucket still gathered), and from the
// reducer's event log ("gather <bucket>" / "release <bucket>") the most
// gathered values held at once during a step.

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "topology/grid_communicators.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"

namespace trident::testing {
namespace {

struct RankMemory {
  int64_t full_bytes = 0;  // The rank's parameters, unsharded.
  int64_t buckets = 0;
  std::vector<int64_t> kept;     // After each step.
  int64_t peak_gathered = 0;     // Bytes, during the steps.
  int max_gathered_buckets = 0;  // At once.
  int gathers = 0;
};

std::map<int, RankMemory> Measure(const LayoutRow& row, int steps) {
  const training::TrainConfig config = EquivalenceConfig(row.ToLayout(), steps);
  absl::Mutex mu;
  std::map<int, RankMemory> result;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    const int rank = r.rank;
    const topology::ProcessGrid& grid = r.grid;
    const topology::GridCommunicators& comms = r.comms;
    const training::BatchGeometry& batch = r.batch;
    training::StepRunner* runner = &r.runner;
    data_parallel::GradientReducer& reducer = runner->gradient_reducer();
    RankMemory m;
    std::map<int, int64_t> bucket_bytes;
    for (const data_parallel::GradientBucket& b : reducer.buckets()) {
      int64_t numel = 0;
      for (const Parameter* p : b.params) numel += p->grad.numel();
      m.full_bytes += numel * 4;
      bucket_bytes[static_cast<int>(bucket_bytes.size())] =
          b.value_shard.nbytes() * comms.dp->size();
    }
    m.buckets = static_cast<int64_t>(reducer.buckets().size());
    std::vector<std::string> log;
    reducer.set_event_log(&log);
    Tensor inputs, targets;
    for (int step = 0; step < steps; ++step) {
      training::SyntheticRows(1, step, batch.ReplicaRows(grid.CoordinatesOf(rank).dp),
                              batch.seq_length, config.model().vocab_size(), &inputs, &targets);
      RETURN_IF_ERROR(runner->TrainStep(step, inputs, targets, batch.tokens_per_step()).status());
      // What the rank keeps: the parameters' own tensors (none may be
      // left) and the reducer's parameter storage.
      int64_t kept = 0;
      for (const Parameter* p : runner->model().parameters()) {
        if (p->value.defined()) kept += p->value.nbytes();
      }
      for (const data_parallel::GradientBucket& b : reducer.buckets()) {
        if (b.value_shard.defined()) kept += b.value_shard.nbytes();
        if (b.gathered.defined()) kept += b.gathered.nbytes();
      }
      if (kept != reducer.parameter_bytes() || reducer.gathered_buckets() != 0) {
        // Nothing stays gathered; parameter_bytes counts the same storage.
        return absl::InternalError(
            absl::StrCat("kept ", kept, " vs parameter_bytes ", reducer.parameter_bytes()));
      }
      m.kept.push_back(kept);
    }
    std::set<int> gathered;
    int64_t bytes = 0;
    for (const std::string& e : log) {
      int k = 0;
      if (absl::StartsWith(e, "gather ") && absl::SimpleAtoi(e.substr(7), &k)) {
        gathered.insert(k);
        bytes += bucket_bytes[k];
        ++m.gathers;
      } else if (absl::StartsWith(e, "release ") && absl::SimpleAtoi(e.substr(8), &k)) {
        gathered.erase(k);
        bytes -= bucket_bytes[k];
      }
      m.peak_gathered = std::max(m.peak_gathered, bytes);
      m.max_gathered_buckets = std::max(m.max_gathered_buckets, static_cast<int>(gathered.size()));
    }
    absl::MutexLock lock(&mu);
    result[rank] = std::move(m);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return result;
}

// `peak_share`: the most of the rank's full parameter bytes that may be
// gathered at once (two layers and the buckets straddling them: half the
// model at 8 layers, more of a pipeline stage's 4).
void ExpectOneDpth(const LayoutRow& row, double peak_share) {
  const int dp = row.dp;
  const std::map<int, RankMemory> ranks = Measure(row, /*steps=*/2);
  ASSERT_EQ(static_cast<int>(ranks.size()), row.tp * row.pp * row.dp);
  for (const auto& [rank, m] : ranks) {
    SCOPED_TRACE(::testing::Message() << "rank " << rank);
    ASSERT_EQ(m.kept.size(), 2u);
    for (int64_t kept : m.kept) {
      // 1 / dp of the values, up to each bucket's padding to a multiple of dp.
      EXPECT_GE(kept * dp, m.full_bytes);
      EXPECT_LE(kept * dp, m.full_bytes + m.buckets * (dp - 1) * 4);
    }
    // Layers were gathered (and prefetched: two at once at least), and never
    // more than a small part of the model at a time.
    EXPECT_GT(m.gathers, 0);
    EXPECT_GE(m.max_gathered_buckets, 2);
    EXPECT_LT(m.peak_gathered, peak_share * m.full_bytes) << "peak " << m.peak_gathered;
    std::printf(
        "rank %d: keeps %lld of %lld parameter bytes (dp %d), peak gathered %lld in %d "
        "buckets, %d gathers in 2 steps\n",
        rank, static_cast<long long>(m.kept.back()), static_cast<long long>(m.full_bytes), dp,
        static_cast<long long>(m.peak_gathered), m.max_gathered_buckets, m.gathers);
  }
}

TEST(ZeroStage3Memory, KeepsOneDpthOfTheValuesAtDp2) {
  ExpectOneDpth({.dp = 2, .micro_batch_size = 4, .grad_bucket_mb = 0.01, .zero_stage = 3}, 0.5);
}

TEST(ZeroStage3Memory, KeepsOneDpthOfTheValuesAtDp4WithMicroBatches) {
  ExpectOneDpth(
      {.dp = 4, .micro_batch_size = 1, .micro_batches = 2, .grad_bucket_mb = 0.01, .zero_stage = 3},
      0.5);
}

TEST(ZeroStage3Memory, KeepsOneDpthOfTheValuesIn3D) {
  ExpectOneDpth({.tp = 2,
                 .pp = 2,
                 .dp = 2,
                 .micro_batches = 4,
                 .schedule = topology::ZERO_BUBBLE_H1,
                 .grad_bucket_mb = 0.01,
                 .zero_stage = 3},
                0.75);
}

}  // namespace
}  // namespace trident::testing
