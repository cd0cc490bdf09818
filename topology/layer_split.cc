#include "topology/layer_split.h"

#include "core/check.h"

namespace trident::topology {

std::vector<LayerRange> VirtualStageLayers(const ParallelLayout& layout, int num_layers) {
  const int pieces = layout.pipeline_parallel() * layout.virtual_pipeline_stages();
  TRIDENT_CHECK_GE(pieces, 1);
  std::vector<LayerRange> ranges(pieces);
  int first = 0;
  for (int v = 0; v < pieces; ++v) {
    int count;
    if (layout.layers_per_stage_size() == 0) {
      TRIDENT_CHECK_EQ(num_layers % pieces, 0) << "unvalidated layout: uneven layer split";
      count = num_layers / pieces;
    } else {
      TRIDENT_CHECK_EQ(layout.layers_per_stage_size(), pieces) << "unvalidated layout";
      count = layout.layers_per_stage(v);
    }
    ranges[v] = LayerRange{.first = first, .count = count};
    first += count;
  }
  TRIDENT_CHECK_EQ(first, num_layers) << "unvalidated layout: split does not cover the layers";
  return ranges;
}

LayerRange ChunkLayers(const ParallelLayout& layout, int num_layers, int stage, int chunk) {
  TRIDENT_CHECK(stage >= 0 && stage < layout.pipeline_parallel()) << "stage " << stage;
  TRIDENT_CHECK(chunk >= 0 && chunk < layout.virtual_pipeline_stages()) << "chunk " << chunk;
  return VirtualStageLayers(layout, num_layers)[chunk * layout.pipeline_parallel() + stage];
}

}  // namespace trident::topology
