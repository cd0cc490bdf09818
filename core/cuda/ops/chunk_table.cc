#include "core/cuda/ops/chunk_table.h"

namespace trident::cuda {

std::vector<ChunkLaunch> PlanChunkLaunches(absl::Span<const int64_t> numels, int64_t chunk) {
  std::vector<ChunkLaunch> launches;
  int64_t blocks_before = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    if (numels[i] == 0) continue;
    if (launches.empty() || static_cast<int>(launches.back().tensors.size()) ==
                                kMaxTensorsPerLaunch) {
      if (!launches.empty()) blocks_before += launches.back().first_chunk.back();
      launches.emplace_back();
      launches.back().first_block_overall = blocks_before;
      launches.back().first_chunk.push_back(0);
    }
    ChunkLaunch& launch = launches.back();
    launch.tensors.push_back(static_cast<int>(i));
    launch.first_chunk.push_back(launch.first_chunk.back() + (numels[i] + chunk - 1) / chunk);
  }
  return launches;
}

}  // namespace trident::cuda
