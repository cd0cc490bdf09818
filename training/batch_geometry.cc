#include "training/batch_geometry.h"

namespace trident::training {

BatchGeometry BatchGeometry::Of(const TrainConfig& config) {
  const topology::ParallelLayout& layout = config.layout();
  BatchGeometry geometry;
  geometry.micro_batch_size = layout.micro_batch_size();
  geometry.micro_batches = layout.num_micro_batches();
  geometry.data_parallel = layout.data_parallel();
  geometry.seq_length = config.data().seq_length();
  return geometry;
}

}  // namespace trident::training
