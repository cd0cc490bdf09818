#include "training/run_files.h"

#include <filesystem>
#include <string>

#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::training {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class RunFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = io::testing::FreshTestDir("run_files");
    train_ = dir_ + "/data/train.bin";
    val_ = dir_ + "/data/val.bin";
    fs::create_directories(dir_ + "/data");
    io::testing::WriteWholeFile(train_, "tokens");
    io::testing::WriteWholeFile(val_, "tokens");
  }
  RunFiles Files() const {
    RunFiles files;
    files.inputs = {train_, val_};
    files.metrics = dir_ + "/out/metrics.jsonl";
    files.save = dir_ + "/out/checkpoint";
    return files;
  }
  std::string Refusal(const RunFiles& files) const {
    const absl::Status status = CheckRunFiles(files);
    EXPECT_FALSE(status.ok());
    return std::string(status.message());
  }

  std::string dir_, train_, val_;
};

TEST_F(RunFilesTest, FreshOutputsPassAndTheirDirectoriesAreMade) {
  ASSERT_TRUE(CheckRunFiles(Files()).ok()) << CheckRunFiles(Files());
  EXPECT_TRUE(fs::is_directory(dir_ + "/out"));
  EXPECT_TRUE(fs::is_empty(dir_ + "/out")) << "only the probe, removed again";
}

TEST_F(RunFilesTest, AnOutputNamingAnInputIsRefused) {
  RunFiles files = Files();
  files.metrics = train_;
  EXPECT_THAT(Refusal(files), HasSubstr("--metrics_out=" + train_ + " is or lies inside the input"));
  files = Files();
  files.save = dir_ + "/data";  // would hold the token files
  EXPECT_THAT(Refusal(files), HasSubstr("lies inside the output directory --save="));
  files = Files();
  files.resume = dir_ + "/old_checkpoint";
  files.export_path = dir_ + "/old_checkpoint/model.safetensors";
  EXPECT_THAT(Refusal(files), HasSubstr("is or lies inside the input " + dir_ + "/old_checkpoint"));
  files = Files();
  files.export_path = files.metrics;
  EXPECT_THAT(Refusal(files), HasSubstr("overlap"));
  // Through a symbolic link, too.
  fs::create_directory_symlink(dir_ + "/data", dir_ + "/link");
  files = Files();
  files.metrics = dir_ + "/link/val.bin";
  EXPECT_THAT(Refusal(files), HasSubstr("is or lies inside the input " + val_));
}

TEST_F(RunFilesTest, ExistingOutputsNeedOverwrite) {
  fs::create_directories(dir_ + "/out");
  io::testing::WriteWholeFile(dir_ + "/out/metrics.jsonl", "{}\n");
  RunFiles files = Files();
  EXPECT_THAT(Refusal(files), HasSubstr("exists (from an earlier run?); pass --overwrite"));
  files.overwrite = true;
  EXPECT_TRUE(CheckRunFiles(files).ok());

  // A resumed run appends to its metrics and adds to its own save directory.
  files = Files();
  files.resume = files.save + "/step_00000004";
  fs::create_directories(files.resume);
  io::testing::WriteWholeFile(files.resume + "/rank_00000.tensors", "x");
  EXPECT_TRUE(CheckRunFiles(files).ok()) << CheckRunFiles(files);
  // Another run's save directory needs --overwrite.
  files = Files();
  files.metrics.clear();
  EXPECT_THAT(Refusal(files), HasSubstr("--save=" + files.save + " exists"));

  // --overwrite writes among checkpoints, never into another directory.
  files = Files();
  files.save = dir_ + "/out/notes";
  fs::create_directories(files.save);
  io::testing::WriteWholeFile(files.save + "/todo.txt", "mine");
  files.overwrite = true;
  EXPECT_THAT(Refusal(files), HasSubstr("holds something other than checkpoints"));
}

TEST_F(RunFilesTest, WrongKindsAndUnwritablePlacesAreRefused) {
  RunFiles files = Files();
  fs::create_directories(dir_ + "/out/metrics.jsonl");
  EXPECT_THAT(Refusal(files), HasSubstr("is a directory; give the path of a file"));
  fs::remove(dir_ + "/out/metrics.jsonl");
  files = Files();
  files.save = train_;
  files.inputs.clear();
  EXPECT_THAT(Refusal(files), HasSubstr("exists and is not a directory"));
  files = Files();
  files.metrics = train_ + "/metrics.jsonl";  // a file as a parent directory
  files.inputs.clear();
  EXPECT_THAT(Refusal(files), HasSubstr("cannot create the directory"));
  files = Files();
  files.metrics = "/proc/trident/metrics.jsonl";
  EXPECT_THAT(Refusal(files), HasSubstr("/proc"));
}

TEST_F(RunFilesTest, ACheckpointThatCannotFitIsRefused) {
  RunFiles files = Files();
  files.checkpoint_bytes = int64_t{1} << 62;
  EXPECT_THAT(Refusal(files), HasSubstr("MB free, less than the"));
}

TEST_F(RunFilesTest, RunDirectoriesAreFreshAndLatestPointsAtTheNewest) {
  std::string metrics = dir_ + "/runs/{run}/metrics.jsonl";
  std::string save = dir_ + "/runs/{run}/checkpoint";
  std::string fixed = dir_ + "/elsewhere.jsonl";
  absl::StatusOr<std::string> run = ExpandRunDirectory({&metrics, &save, &fixed});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(metrics, *run + "/metrics.jsonl");
  EXPECT_EQ(save, *run + "/checkpoint");
  EXPECT_EQ(fixed, dir_ + "/elsewhere.jsonl");
  EXPECT_TRUE(fs::is_directory(*run));
  EXPECT_EQ(fs::canonical(dir_ + "/runs/latest"), fs::canonical(*run));

  // A second run in the same second gets a directory of its own.
  std::string again = dir_ + "/runs/{run}/metrics.jsonl";
  absl::StatusOr<std::string> second = ExpandRunDirectory({&again});
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *run);
  EXPECT_EQ(fs::canonical(dir_ + "/runs/latest"), fs::canonical(*second));

  std::string plain = dir_ + "/plain.jsonl";
  absl::StatusOr<std::string> none = ExpandRunDirectory({&plain});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, "");
}

}  // namespace
}  // namespace trident::training
