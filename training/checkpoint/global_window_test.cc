#include "training/checkpoint/global_window.h"

#include <vector>

#include "gtest/gtest.h"

namespace trident::checkpoint {
namespace {

// The global flat index of every local element, one element at a time.
std::vector<int64_t> BruteForce(const ShardSpec& spec) {
  const std::vector<int64_t> local = *LocalShape(spec);
  int64_t elements = 1;
  for (const int64_t dim : local) elements *= dim;
  std::vector<int64_t> global(elements);
  for (int64_t e = 0; e < elements; ++e) {
    std::vector<int64_t> index(local.size());
    int64_t rest = e;
    for (int k = static_cast<int>(local.size()) - 1; k >= 0; --k) {
      index[k] = rest % local[k];
      rest /= local[k];
    }
    if (!spec.replicated()) {
      const int d = spec.split_dim;
      const int64_t chunk = local[d] / spec.blocks;
      const int64_t block = index[d] / chunk;
      index[d] = block * (spec.global_shape[d] / spec.blocks) + spec.shard_index * chunk +
                 index[d] % chunk;
    }
    int64_t flat = 0;
    for (size_t k = 0; k < index.size(); ++k) flat = flat * spec.global_shape[k] + index[k];
    global[e] = flat;
  }
  return global;
}

TEST(GlobalWindowTest, RunsMatchElementByElementMapping) {
  std::vector<ShardSpec> specs = {
      {{12, 8}, -1, 1, 0, 1},  {{12, 8}, 0, 4, 3, 1}, {{12, 8}, 1, 2, 1, 1},
      {{8, 24}, 1, 2, 1, 3},   {{24, 8}, 0, 4, 2, 3}, {{4, 6, 8}, 1, 3, 2, 1},
      {{48}, 0, 4, 1, 3},      {{16}, 0, 1, 0, 1},
  };
  for (const ShardSpec& spec : specs) {
    const std::vector<int64_t> expected = BruteForce(spec);
    const int64_t n = static_cast<int64_t>(expected.size());
    for (int64_t offset : {int64_t{0}, int64_t{1}, n / 3, n - 1}) {
      for (int64_t length : {int64_t{0}, int64_t{1}, n / 2, n - offset}) {
        if (offset + length > n) continue;
        const auto runs = GlobalRuns(spec, offset, length);
        ASSERT_TRUE(runs.ok()) << runs.status();
        int64_t next = offset;
        for (const FlatRun& run : *runs) {
          ASSERT_EQ(run.local, next);
          ASSERT_GT(run.length, 0);
          for (int64_t i = 0; i < run.length; ++i) {
            ASSERT_EQ(run.global + i, expected[run.local + i])
                << "split_dim " << spec.split_dim << " shard " << spec.shard_index << " blocks "
                << spec.blocks << " element " << run.local + i;
          }
          next += run.length;
        }
        EXPECT_EQ(next, offset + length);
      }
    }
  }
}

TEST(GlobalWindowTest, ShardsTogetherCoverTheGlobalTensorOnce) {
  // Fused QKV-like: 3 blocks along dim 1, 4 shards.
  const std::vector<int64_t> shape = {8, 24};
  std::vector<int> hits(8 * 24, 0);
  for (int shard = 0; shard < 4; ++shard) {
    const ShardSpec spec{shape, 1, 4, shard, 3};
    const auto runs = GlobalRuns(spec, 0, 8 * 6);
    ASSERT_TRUE(runs.ok());
    for (const FlatRun& run : *runs) {
      for (int64_t i = 0; i < run.length; ++i) ++hits[run.global + i];
    }
  }
  for (int h : hits) EXPECT_EQ(h, 1);
}

TEST(GlobalWindowTest, RefusesInconsistentSpecsAndRanges) {
  EXPECT_FALSE(LocalShape({{10, 8}, 0, 4, 0, 1}).ok());  // 10 % 4
  EXPECT_FALSE(LocalShape({{12, 8}, 2, 2, 0, 1}).ok());  // no dim 2
  EXPECT_FALSE(LocalShape({{12, 8}, 0, 2, 2, 1}).ok());  // shard 2 of 2
  EXPECT_FALSE(LocalShape({{12, 8}, 0, 2, 0, 0}).ok());  // 0 blocks
  EXPECT_FALSE(GlobalRuns({{12, 8}, 0, 2, 0, 1}, 40, 10).ok());  // 48 local elements
  EXPECT_FALSE(GlobalRuns({{12, 8}, 0, 2, 0, 1}, -1, 1).ok());
}

}  // namespace
}  // namespace trident::checkpoint
