// Under dp_sync=ps the trainer's workers meet only through the parameter
// servers (issue 12: push and pull "without a global barrier"). One worker
// is made slow (it sleeps after every step, through
// TrainOptions::after_step_for_testing); the others may then finish steps
// up to S = ps_staleness ahead of it, never more.
//
// The lead of a worker finishing 0-based step u is u minus the number of
// steps the slowest other worker has finished: 0 when every step ends at a
// barrier, S at most when the only bound is the servers'. The hook runs after
// a step's deferred reduction has started, so a worker parked in it lets the
// others reach a lead of S - 1 for certain; S only in the window between that
// start and the hook. Asserted on the order of events, not on timings: to show the
// bound is reached, the slow worker waits after each step until the others
// have run S steps past it (a generous time-out turns a barrier that stops
// them into a failure, not a hang); elsewhere a short sleep makes it last to
// arrive, and only the upper bound is asserted.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "training/trainer.h"
#include "training/trainer_testing.h"

namespace trident::training {
namespace {

constexpr int kWorkers = 4;
constexpr int kSlowWorker = kWorkers - 1;  // Not rank 0, which reports.
constexpr int kSteps = 12;

struct LeadRecord {
  int64_t max_lead = -1;
  std::vector<double> losses;
};

// `meet_every` > 0: evaluate and save a checkpoint (to `save_dir`) every
// that many steps, where the workers meet by design.
LeadRecord TrainWithSlowWorker(const std::string& data_dir, int staleness, int meet_every = 0,
                               const std::string& save_dir = "") {
  // Where the workers never meet, the slow one waits for the others' lead.
  const bool wait_for_lead = staleness > 0 && meet_every == 0;
  TrainOptions options = testing::TinyOptions(data_dir);
  TrainConfig& config = options.config;
  config.set_steps(kSteps);
  config.set_eval_interval(meet_every);
  config.set_checkpoint_interval(meet_every);
  options.save_dir = save_dir;
  topology::ParallelLayout& layout = *config.mutable_layout();
  layout.set_data_parallel(kWorkers);
  layout.set_micro_batch_size(1);
  layout.set_dp_sync(topology::DpSync::PS);
  layout.set_ps_servers(1);
  layout.set_ps_staleness(staleness);
  options.threads = 1;

  absl::Mutex mu;
  std::vector<int64_t> finished(kWorkers, 0);  // Steps each worker finished.
  LeadRecord record;
  options.after_step_for_testing = [&](int rank, int64_t step) {
    {
      absl::MutexLock lock(&mu);
      int64_t slowest_other = kSteps;
      for (int w = 0; w < kWorkers; ++w) {
        if (w != rank) slowest_other = std::min(slowest_other, finished[w]);
      }
      record.max_lead = std::max(record.max_lead, step - slowest_other);
      finished[rank] = step + 1;
    }
    if (rank != kSlowWorker) return;
    if (!wait_for_lead) {
      absl::SleepFor(absl::Milliseconds(40));
      return;
    }
    // The others finishing step + S (0-based) puts them S - 1 ahead; none
    // finishes the last step (its pull waits for every update) before this
    // worker pushes its last gradient.
    const int64_t target = std::min<int64_t>(step + 1 + staleness, kSteps - 1);
    const auto others_ahead = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
      for (int w = 0; w < kWorkers; ++w) {
        if (w != rank && finished[w] < target) return false;
      }
      return true;
    };
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&others_ahead), absl::Seconds(10));
  };
  record.losses = testing::MustTrain(options).losses;
  return record;
}

class PsWorkerLeadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = testing::WriteCorpus(io::testing::FreshTestDir("ps_worker_lead"));
  }
  std::string data_dir_;
};

TEST_F(PsWorkerLeadTest, WithStalenessTwoFastWorkersRunAheadAndNeverBeyondTwo) {
  const LeadRecord record = TrainWithSlowWorker(data_dir_, /*staleness=*/2);
  // Ahead (a per-step barrier keeps the lead at 0), never beyond S.
  EXPECT_GE(record.max_lead, 1);
  EXPECT_LE(record.max_lead, 2);
  // Every step's loss still reaches the report, in order, finite.
  ASSERT_EQ(record.losses.size(), static_cast<size_t>(kSteps));
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_TRUE(std::isfinite(record.losses[s])) << "step " << s + 1;
  }
}

// Evaluations and checkpoints every 4 steps are collective: the pending
// reductions complete before them, the run ends with every step reported
// and the last checkpoint written, and the lead stays within S.
TEST_F(PsWorkerLeadTest, EvaluationsAndCheckpointsDrainThePendingSteps) {
  const std::string save_dir = io::testing::FreshTestDir("ps_worker_lead_save") + "/ckpt";
  const LeadRecord record =
      TrainWithSlowWorker(data_dir_, /*staleness=*/2, /*meet_every=*/4, save_dir);
  EXPECT_GE(record.max_lead, 0);
  EXPECT_LE(record.max_lead, 2);
  ASSERT_EQ(record.losses.size(), static_cast<size_t>(kSteps));
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_TRUE(std::isfinite(record.losses[s])) << "step " << s + 1;
  }
  EXPECT_TRUE(std::filesystem::exists(absl::StrCat(save_dir, "/latest")));
}

TEST_F(PsWorkerLeadTest, WithStalenessZeroWorkersStayInLockstep) {
  const LeadRecord record = TrainWithSlowWorker(data_dir_, /*staleness=*/0);
  EXPECT_EQ(record.max_lead, 0);
  ASSERT_EQ(record.losses.size(), static_cast<size_t>(kSteps));
}

}  // namespace
}  // namespace trident::training
