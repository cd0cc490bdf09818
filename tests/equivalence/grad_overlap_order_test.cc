// The overlapped data-parallel reduction starts while the backward runs: an
// instrumented step of the trainer's own StepRunner logs, per rank, every
// weight-gradient pass (W) that ends, every parameter the stage model reports
// final and every bucket reduction that starts (data_parallel/grad_buckets.h
// event log). An ordering check, never a timing one: each bucket that holds
// no late gradient starts before the stage's last W ends, buckets start in
// index order, and bucket index follows the layers backwards.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
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

// The serial layer of a parameter name: h.<N>.* is N, the embedding -1, the
// final LayerNorm (after every block) 1000.
int LayerOf(const std::string& name) {
  int layer = 0;
  if (absl::StartsWith(name, "h.") &&
      absl::SimpleAtoi(std::vector<std::string>(absl::StrSplit(name, '.'))[1], &layer)) {
    return layer;
  }
  return absl::StartsWith(name, "ln_f") ? 1000 : -1;
}

struct BucketNames {
  std::vector<std::string> params;  // In bucket order.
  bool late = false;
};

struct RankLog {
  std::vector<std::string> events;
  std::vector<BucketNames> buckets;
};

// One step of `row` on every rank; returns each rank's log of that step.
std::map<int, RankLog> LogOneStep(const LayoutRow& row) {
  const training::TrainConfig config = EquivalenceConfig(row.ToLayout(), /*steps=*/1);
  absl::Mutex mu;
  std::map<int, RankLog> logs;
  const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
    const int rank = r.rank;
    const topology::ProcessGrid& grid = r.grid;
    const training::BatchGeometry& batch = r.batch;
    training::StepRunner* runner = &r.runner;
    RankLog log;
    data_parallel::GradientReducer* reducer = &runner->gradient_reducer();
    reducer->set_event_log(&log.events);
    // The runner's own hooks, with the end of every W logged between them.
    runner->model().SetGradientHooks(
        {.gradients_final = [reducer](const ParameterList& p) { reducer->MarkFinal(p); },
         .layer_starting = [reducer](const ParameterList& p) { reducer->LayerStarting(p); },
         .layer_done = [reducer](const ParameterList& p) { reducer->LayerDone(p); },
         .after_weight_pass =
             [reducer, &log] {
               log.events.push_back("W");
               reducer->Poll();
             }});
    Tensor inputs, targets;
    training::SyntheticRows(1, 0, batch.ReplicaRows(grid.CoordinatesOf(rank).dp), batch.seq_length,
                            config.model().vocab_size(), &inputs, &targets);
    RETURN_IF_ERROR(runner->TrainStep(0, inputs, targets, batch.tokens_per_step()).status());
    // Names only: the parameters die with the runner.
    for (const data_parallel::GradientBucket& b : reducer->buckets()) {
      BucketNames names{.late = b.late};
      for (const Parameter* p : b.params) names.params.push_back(p->name);
      log.buckets.push_back(std::move(names));
    }
    absl::MutexLock lock(&mu);
    logs[rank] = std::move(log);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return logs;
}

void ExpectStartedDuringBackward(const LayoutRow& row) {
  const std::map<int, RankLog> logs = LogOneStep(row);
  ASSERT_FALSE(logs.empty());
  for (const auto& [rank, log] : logs) {
    SCOPED_TRACE(::testing::Message() << "rank " << rank);
    const std::vector<std::string>& events = log.events;
    int last_w = -1;
    int finish = -1;
    std::vector<int> started;  // Bucket indices in start order.
    std::map<int, int> start_position;
    for (int i = 0; i < static_cast<int>(events.size()); ++i) {
      if (events[i] == "W") last_w = i;
      if (events[i] == "finish") finish = i;
      int bucket = 0;
      if (absl::StartsWith(events[i], "start ") && absl::SimpleAtoi(events[i].substr(6), &bucket)) {
        started.push_back(bucket);
        start_position[bucket] = i;
      }
    }
    ASSERT_GE(last_w, 0);
    ASSERT_GT(finish, last_w);
    // Every bucket started exactly once, in index order.
    ASSERT_EQ(started.size(), log.buckets.size());
    for (int k = 0; k < static_cast<int>(started.size()); ++k) EXPECT_EQ(started[k], k);
    int early = 0;
    for (int k = 0; k < static_cast<int>(log.buckets.size()); ++k) {
      if (log.buckets[k].late) {
        EXPECT_GT(start_position[k], finish) << "late bucket " << k;
        continue;
      }
      ++early;
      EXPECT_LT(start_position[k], last_w) << "bucket " << k << " started after the backward";
      // Reverse layer order: this bucket's layers are at or after the next one's.
      if (k + 1 < static_cast<int>(log.buckets.size()) && !log.buckets[k + 1].late) {
        EXPECT_GE(LayerOf(log.buckets[k].params.back()), LayerOf(log.buckets[k + 1].params.front()))
            << "bucket " << k;
      }
    }
    EXPECT_GE(early, 3) << "the row should give several buckets";
  }
}

TEST(OverlappedGradientReduction, StartsDuringTheBackwardDataParallel) {
  ExpectStartedDuringBackward(
      {.dp = 2, .micro_batch_size = 1, .micro_batches = 4, .grad_bucket_mb = 0.01});
}

TEST(OverlappedGradientReduction, StartsDuringTheBackwardZeroBubble3D) {
  ExpectStartedDuringBackward({.tp = 2,
                               .pp = 2,
                               .dp = 2,
                               .micro_batches = 4,
                               .schedule = topology::ZERO_BUBBLE_H1,
                               .grad_bucket_mb = 0.01});
}

// With interleaving, chunk 1's buckets start before the stage's last W even
// begins (its last W is chunk 0's).
TEST(OverlappedGradientReduction, InterleavedChunkStartsBeforeTheLastWeightPass) {
  const std::map<int, RankLog> logs = LogOneStep({.pp = 2,
                                                  .dp = 2,
                                                  .micro_batches = 4,
                                                  .schedule = topology::INTERLEAVED_1F1B,
                                                  .virtual_stages = 2,
                                                  .grad_bucket_mb = 0.01});
  for (const auto& [rank, log] : logs) {
    int w_seen = 0;
    int total_w = 0;
    for (const std::string& e : log.events) total_w += e == "W";
    bool started_early = false;
    for (const std::string& e : log.events) {
      if (e == "W") ++w_seen;
      if (absl::StartsWith(e, "start ") && w_seen < total_w - 1) started_early = true;
    }
    EXPECT_TRUE(started_early) << "rank " << rank;
  }
}

TEST(OverlappedGradientReduction, WithoutOverlapStartsAfterTheBackward) {
  const std::map<int, RankLog> logs = LogOneStep({.dp = 2,
                                                  .micro_batch_size = 1,
                                                  .micro_batches = 4,
                                                  .overlap_grad_reduce = false,
                                                  .grad_bucket_mb = 0.01});
  for (const auto& [rank, log] : logs) {
    bool finished = false;
    for (const std::string& e : log.events) {
      if (e == "finish") finished = true;
      if (absl::StartsWith(e, "start ")) {
        EXPECT_TRUE(finished) << "rank " << rank << ": " << e;
      }
    }
  }
}

}  // namespace
}  // namespace trident::testing
