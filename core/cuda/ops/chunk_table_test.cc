// The multi-tensor kernels' block-to-(tensor, chunk) mapping, run on the host
// exactly as the kernels run it: every element of every tensor is covered by
// exactly one block, in launches of at most 256 tensors.

#include "core/cuda/ops/chunk_table.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

// Replays the kernels' arithmetic (MultiTensorAdamWKernel, ChunkSumsKernel)
// and counts how often each element is visited.
void ExpectEveryElementOnce(const std::vector<int64_t>& numels, int64_t chunk) {
  const std::vector<ChunkLaunch> launches = PlanChunkLaunches(numels, chunk);
  std::vector<std::vector<int>> visits(numels.size());
  for (size_t i = 0; i < numels.size(); ++i) visits[i].assign(numels[i], 0);
  int64_t blocks_before = 0;
  for (const ChunkLaunch& launch : launches) {
    const int count = static_cast<int>(launch.tensors.size());
    ASSERT_GE(count, 1);
    ASSERT_LE(count, kMaxTensorsPerLaunch);
    ASSERT_EQ(launch.first_chunk.size(), launch.tensors.size() + 1);
    EXPECT_EQ(launch.first_block_overall, blocks_before);
    const int64_t blocks = launch.first_chunk.back();
    for (int64_t block = 0; block < blocks; ++block) {
      const int t = TensorOfBlock(launch.first_chunk.data(), count, block);
      ASSERT_GE(t, 0);
      ASSERT_LT(t, count);
      const int64_t n = numels[launch.tensors[t]];
      const int64_t begin = (block - launch.first_chunk[t]) * chunk;
      const int64_t end = begin + chunk < n ? begin + chunk : n;
      ASSERT_LT(begin, end) << "block " << block << " has no elements";
      for (int64_t e = begin; e < end; ++e) ++visits[launch.tensors[t]][e];
    }
    blocks_before += blocks;
  }
  for (size_t i = 0; i < numels.size(); ++i) {
    for (int64_t e = 0; e < numels[i]; ++e) {
      ASSERT_EQ(visits[i][e], 1) << "tensor " << i << " element " << e;
    }
  }
}

TEST(ChunkTableTest, ModelLikeListWithEmptyTensorsAndChunkBoundaries) {
  ExpectEveryElementOnce({1, 7, 0, 64, 65, 128, 3, 0, 1000}, 64);
}

TEST(ChunkTableTest, MoreTensorsThanOneLaunchHolds) {
  std::vector<int64_t> numels;
  for (int i = 0; i < 600; ++i) numels.push_back(i % 7 == 0 ? 0 : 1 + (i * 37) % 300);
  ExpectEveryElementOnce(numels, 32);
  const std::vector<ChunkLaunch> launches = PlanChunkLaunches(numels, 32);
  ASSERT_EQ(launches.size(), 3u);  // 514 non-empty tensors: 256 + 256 + 2
  EXPECT_EQ(launches[0].tensors.size(), 256u);
  EXPECT_EQ(launches[2].tensors.size(), 2u);
}

TEST(ChunkTableTest, OnlyEmptyTensorsNeedNoLaunch) {
  EXPECT_TRUE(PlanChunkLaunches({0, 0}, 64).empty());
  EXPECT_TRUE(PlanChunkLaunches({}, 64).empty());
}

TEST(ChunkTableTest, FindsTheTensorOfEveryBlock) {
  const int64_t first_chunk[] = {0, 1, 1, 4, 9};  // tensor 1 would be empty; 4 tensors
  // Block 1 belongs to tensor 2 (tensor 1 has no blocks: the largest t with
  // first_chunk[t] <= 1).
  EXPECT_EQ(TensorOfBlock(first_chunk, 4, 0), 0);
  EXPECT_EQ(TensorOfBlock(first_chunk, 4, 1), 2);
  EXPECT_EQ(TensorOfBlock(first_chunk, 4, 3), 2);
  EXPECT_EQ(TensorOfBlock(first_chunk, 4, 4), 3);
  EXPECT_EQ(TensorOfBlock(first_chunk, 4, 8), 3);
}

}  // namespace
}  // namespace trident::cuda
