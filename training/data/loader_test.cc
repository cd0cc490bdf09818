#include "training/data/loader.h"

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/data/test_util.h"
#include "training/data/token_file.h"

namespace trident::data {
namespace {

using ::testing::HasSubstr;
using testing::TempPath;

constexpr int64_t kVocab = 1000;

// Token i of the file is i mod kVocab: a window's content tells where it starts.
TokenFile CountingFile(const std::string& name, int64_t num_tokens) {
  std::vector<int32_t> tokens(num_tokens);
  for (int64_t i = 0; i < num_tokens; ++i) tokens[i] = static_cast<int32_t>(i % kVocab);
  const std::string path = TempPath(name);
  EXPECT_TRUE(WriteTokenFile(path, kVocab, tokens).ok());
  auto file = TokenFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return *std::move(file);
}

TrainBatches MakeBatches(int64_t num_tokens, int64_t batch, int64_t seq_len, uint64_t seed) {
  auto batches = TrainBatches::Create(CountingFile("train.bin", num_tokens), batch, seq_len, seed);
  EXPECT_TRUE(batches.ok()) << batches.status();
  return *std::move(batches);
}

std::vector<int32_t> Rows(const TrainBatches& batches, int64_t step, RowRange rows) {
  auto tokens = batches.Rows(step, rows);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  return tokens.ok() ? *tokens : std::vector<int32_t>{};
}

TEST(SliceRowsTest, SplitsEvenlyAndRefusesUnevenSplits) {
  EXPECT_EQ(*SliceRows({0, 8}, 4, 0), (RowRange{0, 2}));
  EXPECT_EQ(*SliceRows({0, 8}, 4, 3), (RowRange{6, 2}));
  EXPECT_EQ(*SliceRows({6, 2}, 2, 1), (RowRange{7, 1}));
  EXPECT_THAT(SliceRows({0, 10}, 4, 0).status().message(),
              HasSubstr("a batch of 10 rows does not split into 4 equal parts"));
  EXPECT_THAT(SliceRows({0, 8}, 4, 4).status().message(), HasSubstr("part 4 is outside [0, 4)"));
  EXPECT_THAT(SliceRows({0, 8}, 0, 0).status().message(), HasSubstr("into 0 parts"));
}

TEST(TrainBatchesTest, SameSeedAndStepGiveTheSameBatch) {
  const TrainBatches a = MakeBatches(50000, 8, 64, 1234);
  const TrainBatches b = MakeBatches(50000, 8, 64, 1234);
  for (int64_t step : {0, 1, 7, 1000, 123456}) {
    EXPECT_EQ(Rows(a, step, {0, 8}), Rows(b, step, {0, 8})) << "step " << step;
  }
  EXPECT_NE(Rows(a, 0, {0, 8}), Rows(a, 1, {0, 8}));
  const TrainBatches other_seed = MakeBatches(50000, 8, 64, 99);
  EXPECT_NE(Rows(a, 0, {0, 8}), Rows(other_seed, 0, {0, 8}));
  EXPECT_EQ(a.Position(17), (DataPosition{1234, 17}));
}

TEST(TrainBatchesTest, SlicesOfAnyLayoutConcatenateToTheGlobalBatch) {
  const TrainBatches batches = MakeBatches(50000, 8, 32, 7);
  for (int64_t step : {0, 3, 250}) {
    const std::vector<int32_t> global = Rows(batches, step, {0, 8});
    for (int64_t dp : {1, 2, 4, 8}) {
      for (int64_t micro_batches : {1, 2}) {
        if (8 / dp % micro_batches != 0) continue;
        std::vector<int32_t> joined;
        for (int64_t rank = 0; rank < dp; ++rank) {
          const RowRange slice = *SliceRows({0, 8}, dp, rank);
          for (int64_t k = 0; k < micro_batches; ++k) {
            const std::vector<int32_t> part =
                Rows(batches, step, *SliceRows(slice, micro_batches, k));
            joined.insert(joined.end(), part.begin(), part.end());
          }
        }
        EXPECT_EQ(joined, global) << "step " << step << " dp " << dp << " mb " << micro_batches;
      }
    }
  }
}

TEST(TrainBatchesTest, RowsAreContiguousWindowsInRangeWithTargetsShiftedByOne) {
  const int64_t num_tokens = 10007;
  const int64_t seq_len = 50;
  const TrainBatches batches = MakeBatches(num_tokens, 4, seq_len, 3);
  for (int64_t step = 0; step < 200; ++step) {
    const std::vector<int32_t> rows = Rows(batches, step, {0, 4});
    ASSERT_EQ(rows.size(), 4u * (seq_len + 1));
    for (int64_t r = 0; r < 4; ++r) {
      const int64_t start = batches.WindowStart(step, r);
      ASSERT_GE(start, 0);
      ASSERT_LE(start + seq_len + 1, num_tokens);
      const int32_t* row = &rows[r * (seq_len + 1)];
      for (int64_t j = 0; j <= seq_len; ++j) {
        // The window holds the file's tokens from `start`, so target j (row[j+1])
        // is the token after input j.
        ASSERT_EQ(row[j], (start + j) % kVocab) << "step " << step << " row " << r;
      }
    }
  }
}

TEST(TrainBatchesTest, EachEpochVisitsEveryWindowOnceOnItsShiftedGrid) {
  const int64_t seq_len = 16;
  const TrainBatches batches = MakeBatches(16 * 40 + 5, 4, seq_len, 11);
  const int64_t windows = batches.windows_per_epoch();
  EXPECT_EQ(windows, 39);  // floor((645 - 1) / 16) - 1
  std::set<int64_t> offsets;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    std::set<int64_t> starts;
    int64_t offset = -1;
    for (int64_t sample = epoch * windows; sample < (epoch + 1) * windows; ++sample) {
      const int64_t step = sample / 4;
      const int64_t row = sample % 4;
      ASSERT_EQ(batches.Epoch(step, row), epoch);
      const int64_t start = batches.WindowStart(step, row);
      if (offset < 0) offset = start % seq_len;
      ASSERT_EQ(start % seq_len, offset) << "one grid per epoch";
      ASSERT_LT(offset, seq_len);
      starts.insert(start);
    }
    EXPECT_EQ(static_cast<int64_t>(starts.size()), windows) << "epoch " << epoch;
    offsets.insert(offset);
  }
  EXPECT_GT(offsets.size(), 1u) << "the grid should move between epochs";
}

TEST(TrainBatchesTest, OrderIsShuffledWithinAnEpoch) {
  const TrainBatches batches = MakeBatches(100000, 1, 10, 5);
  int64_t in_order = 0;
  for (int64_t step = 1; step < 1000; ++step) {
    in_order += batches.WindowStart(step, 0) == batches.WindowStart(step - 1, 0) + 10;
  }
  EXPECT_LT(in_order, 20);
}

TEST(TrainBatchesTest, AFileWithRoomForOneWindowStillWorks) {
  const TrainBatches batches = MakeBatches(20, 2, 16, 1);
  EXPECT_EQ(batches.windows_per_epoch(), 1);
  for (int64_t step = 0; step < 20; ++step) {
    for (int64_t row = 0; row < 2; ++row) {
      const int64_t start = batches.WindowStart(step, row);
      ASSERT_GE(start, 0);
      ASSERT_LE(start + 17, 20);
    }
  }
}

TEST(TrainBatchesTest, RefusesBadArguments) {
  auto too_short = TrainBatches::Create(CountingFile("short.bin", 64), 2, 64, 0);
  EXPECT_EQ(too_short.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_short.status().message(),
              HasSubstr("has 64 tokens; a window of seq_len 64 needs 65"));
  EXPECT_THAT(TrainBatches::Create(CountingFile("a.bin", 100), 0, 8, 0).status().message(),
              HasSubstr("global_batch_size 0 must be at least 1"));
  EXPECT_THAT(TrainBatches::Create(CountingFile("b.bin", 100), 2, 0, 0).status().message(),
              HasSubstr("seq_len 0 must be at least 1"));

  const TrainBatches batches = MakeBatches(1000, 4, 8, 0);
  std::vector<int32_t> out(2 * 9);
  EXPECT_TRUE(batches.FillRows(0, {2, 2}, absl::MakeSpan(out)).ok());
  EXPECT_THAT(batches.FillRows(0, {3, 2}, absl::MakeSpan(out)).message(),
              HasSubstr("rows [3, 5) are outside the global batch [0, 4)"));
  EXPECT_THAT(batches.FillRows(-1, {0, 2}, absl::MakeSpan(out)).message(),
              HasSubstr("step -1 is negative"));
  EXPECT_THAT(batches.FillRows(0, {0, 1}, absl::MakeSpan(out)).message(),
              HasSubstr("output buffer holds 18 tokens; 1 rows of 9 need 9"));
}

TEST(ValidationWindowsTest, SpreadsWindowsEvenlyFromTheFirstTokenToTheLast) {
  auto windows = ValidationWindows::Create(CountingFile("val.bin", 1000), 100, 5);
  ASSERT_TRUE(windows.ok()) << windows.status();
  EXPECT_EQ(windows->num_windows(), 5);
  // s_k = floor(k * (1000 - 101) / 4): the last window ends the file.
  const std::vector<int64_t> starts = {0, 224, 449, 674, 899};
  std::vector<int32_t> out(5 * 101);
  ASSERT_TRUE(windows->FillWindows({0, 5}, absl::MakeSpan(out)).ok());
  for (int64_t k = 0; k < 5; ++k) {
    EXPECT_EQ(windows->WindowStart(k), starts[k]);
    for (int64_t j = 0; j <= 100; ++j) ASSERT_EQ(out[k * 101 + j], (starts[k] + j) % kVocab);
  }
  auto one = ValidationWindows::Create(CountingFile("val1.bin", 1000), 100, 1);
  EXPECT_EQ(one->WindowStart(0), 0);
  // A slice equals the same rows of the whole.
  std::vector<int32_t> part(2 * 101);
  ASSERT_TRUE(windows->FillWindows({3, 2}, absl::MakeSpan(part)).ok());
  EXPECT_EQ(part, std::vector<int32_t>(out.begin() + 3 * 101, out.end()));

  auto all = ValidationWindows::Create(CountingFile("val2.bin", 1000), 100, 0);
  EXPECT_EQ(all->num_windows(), 9);  // floor(999 / 100)
  EXPECT_EQ(ValidationWindows::WindowsThatFit(1000, 100), 9);
  EXPECT_EQ(ValidationWindows::WindowsThatFit(100, 100), 0);
  // All that fit: the gaps (112 or 113 tokens) are never under seq_len.
  for (int64_t k = 1; k < 9; ++k) {
    EXPECT_GE(all->WindowStart(k) - all->WindowStart(k - 1), 100) << k;
  }
  EXPECT_EQ(all->WindowStart(8), 899);
  EXPECT_THAT(all->FillWindows({8, 2}, absl::MakeSpan(part)).message(),
              HasSubstr("validation windows [8, 10) are outside [0, 9)"));
  EXPECT_THAT(ValidationWindows::Create(CountingFile("val3.bin", 50), 100, 0).status().message(),
              HasSubstr("has 50 tokens; a window of seq_len 100 needs 101"));
}

}  // namespace
}  // namespace trident::data
