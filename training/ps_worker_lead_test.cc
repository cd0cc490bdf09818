// Under dp_sync=ps the trainer's workers meet only through the parameter
// servers (issue 12: push and pull "without a global barrier"). One worker
// is made slow (it sleeps after every step, through
// TrainOptions::after_step_for_testing); the others may then finish steps
// up to S = ps_staleness ahead of it, never more.
//
// The lead of a worker finishing 0-based step u is u minus the number of
// steps the slowest other worker has finished (the step it is working on):
// 0 when every step ends at a barrier, S at most when the only bound is the
// servers'. Asserted on the order of events, not on timings; the sleep only
// makes the slow worker last to arrive.

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
    if (rank == kSlowWorker) absl::SleepFor(absl::Milliseconds(40));
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

TEST_F(PsWorkerLeadTest, WithStalenessTwoFastWorkersRunTwoStepsAheadAndNoMore) {
  const LeadRecord record = TrainWithSlowWorker(data_dir_, /*staleness=*/2);
  EXPECT_EQ(record.max_lead, 2);
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
