#include "topology/layer_split.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"

namespace trident::topology {
namespace {

using ::testing::ElementsAre;

TEST(LayerSplitTest, EvenSplitOneChunkPerStage) {
  ParallelLayout layout;
  layout.set_pipeline_parallel(4);
  EXPECT_THAT(VirtualStageLayers(layout, 8),
              ElementsAre(LayerRange{0, 2}, LayerRange{2, 2}, LayerRange{4, 2}, LayerRange{6, 2}));
  EXPECT_EQ(ChunkLayers(layout, 8, 3, 0), (LayerRange{6, 2}));
}

TEST(LayerSplitTest, InterleavedChunksTakeEveryPpthPiece) {
  // Megatron: pp=2, 2 chunks, 8 layers -> stage 0 holds layers 0-1 and 4-5,
  // stage 1 holds 2-3 and 6-7.
  ParallelLayout layout;
  layout.set_pipeline_parallel(2);
  layout.set_virtual_pipeline_stages(2);
  layout.set_schedule(INTERLEAVED_1F1B);
  EXPECT_EQ(ChunkLayers(layout, 8, 0, 0), (LayerRange{0, 2}));
  EXPECT_EQ(ChunkLayers(layout, 8, 1, 0), (LayerRange{2, 2}));
  EXPECT_EQ(ChunkLayers(layout, 8, 0, 1), (LayerRange{4, 2}));
  EXPECT_EQ(ChunkLayers(layout, 8, 1, 1), (LayerRange{6, 2}));
}

TEST(LayerSplitTest, ExplicitUnevenSplit) {
  ParallelLayout layout;
  layout.set_pipeline_parallel(3);
  for (int n : {1, 3, 2}) layout.add_layers_per_stage(n);
  EXPECT_THAT(VirtualStageLayers(layout, 6),
              ElementsAre(LayerRange{0, 1}, LayerRange{1, 3}, LayerRange{4, 2}));
  EXPECT_EQ(ChunkLayers(layout, 6, 1, 0), (LayerRange{1, 3}));
}

TEST(LayerSplitTest, PiecesTileTheModel) {
  for (int pp = 1; pp <= 4; ++pp) {
    for (int v = 1; v <= 3; ++v) {
      ParallelLayout layout;
      layout.set_pipeline_parallel(pp);
      layout.set_virtual_pipeline_stages(v);
      const int layers = pp * v * 3;
      std::vector<int> owner(layers, 0);
      for (int stage = 0; stage < pp; ++stage) {
        for (int chunk = 0; chunk < v; ++chunk) {
          const LayerRange range = ChunkLayers(layout, layers, stage, chunk);
          EXPECT_EQ(range.count, 3);
          for (int i = range.first; i < range.first + range.count; ++i) ++owner[i];
        }
      }
      EXPECT_THAT(owner, ::testing::Each(1)) << "pp=" << pp << " v=" << v;
    }
  }
}

TEST(LayerSplitDeathTest, UnvalidatedSplitIsAnInternalError) {
  ParallelLayout layout;
  layout.set_pipeline_parallel(3);
  EXPECT_DEATH(VirtualStageLayers(layout, 8), "uneven layer split");
}

}  // namespace
}  // namespace trident::topology
