#ifndef TRIDENT_TOPOLOGY_LAYER_SPLIT_H_
#define TRIDENT_TOPOLOGY_LAYER_SPLIT_H_

// Which transformer layers each pipeline stage holds, for a layout that passed
// ValidateLayout. The model is cut into pipeline_parallel x
// virtual_pipeline_stages contiguous pieces ("virtual stages") in layer order;
// virtual stage v runs on stage v % pipeline_parallel as its model chunk
// v / pipeline_parallel (Megatron's interleaved assignment; with one chunk per
// stage, stage s simply holds piece s). Piece sizes come from
// layers_per_stage, or are equal when it is empty.

#include <vector>

#include "topology/layout.pb.h"

namespace trident::topology {

// Layers [first, first + count) of the model.
struct LayerRange {
  int first = 0;
  int count = 0;

  friend bool operator==(const LayerRange&, const LayerRange&) = default;
};

// The layers of model chunk `chunk` on pipeline stage `stage`. CHECKs that
// stage and chunk are in range and that the split fits num_layers (validate
// the layout first).
LayerRange ChunkLayers(const ParallelLayout& layout, int num_layers, int stage, int chunk);

// All pieces in layer order, indexed by virtual stage
// (chunk * pipeline_parallel + stage).
std::vector<LayerRange> VirtualStageLayers(const ParallelLayout& layout, int num_layers);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_LAYER_SPLIT_H_
