#ifndef TRIDENT_CORE_OPS_CPU_PARALLEL_H_
#define TRIDENT_CORE_OPS_CPU_PARALLEL_H_

// Grain sizes for splitting CPU kernels over a context's threads: below these,
// waking a worker (a few microseconds) costs more than the work it takes over.

#include <algorithm>
#include <cstdint>

namespace trident::ops::cpu {

// Elements per chunk of a memory-bound elementwise loop.
inline constexpr int64_t kElementwiseGrain = 1 << 15;

// Columns per tile of a column reduction (the tile's double accumulators live
// on the stack).
inline constexpr int64_t kColumnTile = 128;

// Rows per chunk for row-wise kernels on rows of `cols` elements.
inline int64_t RowGrain(int64_t cols) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(cols, 1));
}

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_PARALLEL_H_
