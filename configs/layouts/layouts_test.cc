// Every example layout in configs/layouts parses, validates for the reference
// model below on the world size its grid implies, and builds a process grid.

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "topology/layout_io.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"

namespace trident::topology {
namespace {

// The reference model every example must fit: a small GPT whose sizes all the
// examples divide. 8 layers split into 1 (serial), 2 stages (4+4), 3 uneven
// stages (3+3+2) or 4 stages x 2 chunks (1 each); 8 heads, 256 hidden and
// 1024 FFN split over tp 2; 128 tokens split over tp 2 for sequence
// parallelism; GPT-2's 50257-token vocabulary (padded, never rejected).
constexpr ModelDimensions kReferenceModel{.num_layers = 8,
                                          .num_heads = 8,
                                          .hidden_size = 256,
                                          .ffn_hidden_size = 1024,
                                          .vocab_size = 50257,
                                          .seq_length = 128};

// Bazel runs tests in the workspace's runfiles directory, where `data` files
// keep their workspace-relative paths.
constexpr char kLayoutDir[] = "configs/layouts";

std::vector<std::string> LayoutFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kLayoutDir)) {
    const std::string path = entry.path().string();
    if (absl::EndsWith(path, ".textproto")) files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ExampleLayoutsTest, TheDocumentedExamplesAreThere) {
  std::vector<std::string> names;
  for (const std::string& path : LayoutFiles()) {
    names.push_back(std::filesystem::path(path).filename().string());
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"serial.textproto", "tp2.textproto",
                                              "tp2_pp2_dp2.textproto",
                                              "pp4_interleaved.textproto"}));
}

TEST(ExampleLayoutsTest, EveryLayoutParsesValidatesAndBuildsAGrid) {
  const std::vector<std::string> files = LayoutFiles();
  ASSERT_FALSE(files.empty()) << "no layouts found under " << kLayoutDir;
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    absl::StatusOr<ParallelLayout> layout = LoadLayoutFromFile(path);
    ASSERT_TRUE(layout.ok()) << layout.status();
    const int world = layout->tensor_parallel() * layout->pipeline_parallel() *
                      layout->data_parallel();
    const absl::Status valid = ValidateLayout(*layout, world, kReferenceModel);
    EXPECT_TRUE(valid.ok()) << valid;
    absl::StatusOr<ProcessGrid> grid = ProcessGrid::Create(*layout, world);
    ASSERT_TRUE(grid.ok()) << grid.status();
    EXPECT_EQ(grid->world_size(), world);
  }
}

TEST(ExampleLayoutsTest, ThreeDExampleIsWhatItsCommentSays) {
  absl::StatusOr<ParallelLayout> layout =
      LoadLayoutFromFile(std::string(kLayoutDir) + "/tp2_pp2_dp2.textproto");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->tensor_parallel(), 2);
  EXPECT_EQ(layout->pipeline_parallel(), 2);
  EXPECT_EQ(layout->data_parallel(), 2);
  EXPECT_EQ(layout->schedule(), ONE_F_ONE_B);
  EXPECT_EQ(layout->num_micro_batches(), 4);
}

}  // namespace
}  // namespace trident::topology
