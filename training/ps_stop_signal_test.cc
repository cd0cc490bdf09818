// A stop signal under dp_sync=ps, in process (the tool's SIGTERM runs are
// tests/tools/train_ps_mpi_test.sh): the signal is raised on rank 0 after a
// chosen step (TrainOptions::after_step_for_testing), the workers agree on it
// after that step (S = 0), end the servers' run, save their state and
// return the signal. The checkpoint goes where only a signal saves
// (signal_save_dir). Resuming from it gives the uninterrupted run's losses
// bit for bit when the signal came mid-run (the servers stop early); in the
// last step (the servers' planned final snapshot, no stop push) the
// checkpoint continues as the one a scheduled save writes there.

#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "training/stop_signals.h"
#include "training/trainer.h"
#include "training/trainer_testing.h"

namespace trident::training {
namespace {

constexpr int kSteps = 8;

TrainOptions PsOptions(const std::string& data_dir) {
  TrainOptions options = testing::TinyOptions(data_dir);
  options.config.set_steps(kSteps);
  options.config.set_eval_interval(0);
  topology::ParallelLayout& layout = *options.config.mutable_layout();
  layout.set_data_parallel(2);
  layout.set_micro_batch_size(1);
  layout.set_dp_sync(topology::DpSync::PS);
  layout.set_ps_servers(2);
  layout.set_ps_staleness(0);
  options.threads = 1;
  return options;
}

class PsStopSignalTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(PsStopSignalTest, SavesTheServersStateAndResumesBitForBit) {
  const int64_t stop_after = GetParam();  // Steps finished when the signal comes.
  const std::string dir = io::testing::FreshTestDir(absl::StrCat("ps_stop_", stop_after));
  const std::string data_dir =
      testing::WriteCorpus(io::testing::FreshTestDir(absl::StrCat("ps_stop_data_", stop_after)));
  const std::vector<double> whole = testing::MustTrain(PsOptions(data_dir)).losses;
  ASSERT_EQ(whole.size(), static_cast<size_t>(kSteps));

  TrainOptions cut = PsOptions(data_dir);
  // Where only a signal saves (no scheduled save, not even the last step's).
  cut.signal_save_dir = dir + "/ckpt";
  cut.after_step_for_testing = [&](int rank, int64_t step) {
    if (rank == 0 && step + 1 == stop_after) std::raise(SIGTERM);
  };
  TrainResult stopped;
  {
    StopSignals signals;
    stopped = testing::MustTrain(cut);
  }
  EXPECT_EQ(stopped.stop_signal, SIGTERM);
  ASSERT_EQ(stopped.losses.size(), static_cast<size_t>(stop_after));
  ASSERT_FALSE(stopped.checkpoint.empty());
  if (stop_after == kSteps) return;  // Nothing left to resume.

  TrainOptions rest = PsOptions(data_dir);
  rest.resume_dir = cut.signal_save_dir;
  TrainResult resumed;
  {
    StopSignals fresh;  // Clears the signal recorded above.
    resumed = testing::MustTrain(rest);
  }
  EXPECT_EQ(resumed.first_step, stop_after);
  std::vector<double> losses = stopped.losses;
  losses.insert(losses.end(), resumed.losses.begin(), resumed.losses.end());
  EXPECT_EQ(losses, whole);  // Bit for bit (NaN never compares equal).
}

TEST(PsStopSignalTest, InTheLastStepTheCheckpointHoldsTheFinalState) {
  // Resumed with more steps, the run signalled in its last step continues
  // as one that saved there on schedule.
  const std::string dir = io::testing::FreshTestDir("ps_stop_last");
  const std::string data_dir = testing::WriteCorpus(io::testing::FreshTestDir("ps_stop_last_data"));
  TrainOptions scheduled = PsOptions(data_dir);
  scheduled.save_dir = dir + "/scheduled";
  scheduled.config.set_checkpoint_interval(kSteps);
  testing::MustTrain(scheduled);
  TrainOptions cut = PsOptions(data_dir);
  cut.signal_save_dir = dir + "/signalled";
  cut.after_step_for_testing = [&](int rank, int64_t step) {
    if (rank == 0 && step + 1 == kSteps) std::raise(SIGTERM);
  };
  {
    StopSignals signals;
    EXPECT_EQ(testing::MustTrain(cut).stop_signal, SIGTERM);
  }
  std::vector<std::vector<double>> continued;
  for (const std::string& from : {scheduled.save_dir, cut.signal_save_dir}) {
    TrainOptions more = PsOptions(data_dir);
    more.config.set_steps(kSteps + 3);
    more.resume_dir = from;
    StopSignals fresh;  // Clears the signal recorded above.
    continued.push_back(testing::MustTrain(more).losses);
  }
  ASSERT_EQ(continued[0].size(), 3u);
  EXPECT_EQ(continued[1], continued[0]);
}

INSTANTIATE_TEST_SUITE_P(Steps, PsStopSignalTest, ::testing::Values(3, kSteps));

}  // namespace
}  // namespace trident::training
