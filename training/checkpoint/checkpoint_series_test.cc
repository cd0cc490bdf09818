#include "training/checkpoint/checkpoint_series.h"

#include <filesystem>
#include <string>

#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A stand-in checkpoint: the series only looks for rank 0's file.
void FakeCheckpoint(const std::string& root, int64_t step) {
  const std::string dir = StepCheckpointDir(root, step);
  fs::create_directories(dir);
  io::testing::WriteWholeFile(dir + "/rank_00000.tensors", "x");
}

TEST(CheckpointSeriesTest, StepDirectoriesLatestAndPruning) {
  const std::string root = io::testing::FreshTestDir("series");
  EXPECT_EQ(StepCheckpointDir(root, 100), root + "/step_00000100");
  EXPECT_FALSE(IsCheckpointDirectory(root));
  for (int64_t step : {100, 200, 300}) {
    FakeCheckpoint(root, step);
    ASSERT_TRUE(SetLatestCheckpoint(root, step).ok());
  }
  fs::create_directories(root + "/step_notes");  // not a checkpoint: ignored, kept
  EXPECT_THAT(CheckpointSteps(root), ElementsAre(100, 200, 300));
  EXPECT_TRUE(IsCheckpointDirectory(root));
  EXPECT_EQ(fs::read_symlink(root + "/latest"), "step_00000300");
  absl::StatusOr<std::string> resume = ResolveResumeCheckpoint(root);
  ASSERT_TRUE(resume.ok()) << resume.status();
  EXPECT_EQ(fs::canonical(*resume), fs::canonical(root + "/step_00000300"));
  // A step directory resumes as itself.
  EXPECT_EQ(*ResolveResumeCheckpoint(root + "/step_00000100"), root + "/step_00000100");

  ASSERT_TRUE(PruneCheckpoints(root, 2).ok());
  EXPECT_THAT(CheckpointSteps(root), ElementsAre(200, 300));
  EXPECT_TRUE(fs::exists(root + "/step_notes"));
  EXPECT_FALSE(PruneCheckpoints(root, 0).ok());
}

TEST(CheckpointSeriesTest, ResumeFromSomethingElseIsNotFound) {
  const std::string root = io::testing::FreshTestDir("series_empty");
  absl::StatusOr<std::string> resume = ResolveResumeCheckpoint(root);
  ASSERT_FALSE(resume.ok());
  EXPECT_EQ(resume.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(resume.status().message(), HasSubstr("neither a checkpoint"));
}

}  // namespace
}  // namespace trident::checkpoint
