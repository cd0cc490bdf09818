#ifndef TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_H_
#define TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_H_

// The grid layout of the multi-tensor kernels (MultiTensorAdamW,
// MultiTensorSumOfSquares): every tensor is cut into chunks of a fixed number
// of elements, one thread block per chunk, the chunks of the launch's tensor t
// being blocks [first_chunk[t], first_chunk[t + 1]). The table of tensors
// travels as a __grid_constant__ kernel parameter (no allocation, no copy to
// wait for, and it lives exactly as long as the launch); CUDA 12.1+ allows
// 32 KiB of parameters on Volta and newer, so up to kMaxTensorsPerLaunch
// tensors go in one launch and longer lists take one launch per that many.
//
// Plain C++ with the one device function marked for nvcc, so the index
// arithmetic is unit-tested on the host (chunk_table_test) exactly as the
// kernels run it.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

#if defined(__CUDACC__)
#define TRIDENT_HOST_DEVICE __host__ __device__
#else
#define TRIDENT_HOST_DEVICE
#endif

namespace trident::cuda {

inline constexpr int kMaxTensorsPerLaunch = 256;

// The launch-local index of the tensor whose chunks contain block `block`: the
// largest t < count with first_chunk[t] <= block (first_chunk is
// non-decreasing, first_chunk[0] = 0 and block < first_chunk[count]). Binary
// search: 8 steps for 256 tensors.
TRIDENT_HOST_DEVICE inline int TensorOfBlock(const int64_t* first_chunk, int count,
                                             int64_t block) {
  int lo = 0, hi = count - 1;  // The answer is in [lo, hi].
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (first_chunk[mid] <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// One launch of a multi-tensor kernel.
struct ChunkLaunch {
  // Indices into the caller's list of the tensors of this launch (non-empty
  // ones only, in list order, at most kMaxTensorsPerLaunch).
  std::vector<int> tensors;
  // tensors.size() + 1 entries: first_chunk[t] is the first block of
  // tensors[t]; the last entry is the launch's number of blocks.
  std::vector<int64_t> first_chunk;
  // The number of blocks of the launches before this one (where its partial
  // results continue, for a reduction).
  int64_t first_block_overall = 0;
};

// The launches covering tensors of these element counts with chunks of
// `chunk` elements (> 0). Empty tensors get no block; no launch is empty.
std::vector<ChunkLaunch> PlanChunkLaunches(absl::Span<const int64_t> numels, int64_t chunk);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_H_
