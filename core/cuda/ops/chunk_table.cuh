#ifndef TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_CUH_
#define TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_CUH_

// The grid layout of the multi-tensor kernels (MultiTensorAdamW,
// MultiTensorSumOfSquares): every tensor is cut into chunks of a fixed number
// of elements, one thread block per chunk, the chunks of tensor t being blocks
// [first_chunk[t], first_chunk[t + 1]). The table of tensors travels as a
// kernel parameter (in the device's constant bank: no allocation, no copy to
// wait for, and it lives exactly as long as the launch); CUDA 12.1+ allows
// 32 KiB of parameters on Volta and newer, so up to kMaxTensorsPerLaunch
// tensors go in one launch and longer lists take one launch per that many.
//
// Included by .cu files only (nvcc); a textual header.

#include <cstdint>

namespace trident::cuda {

inline constexpr int kMaxTensorsPerLaunch = 256;

// The tensor whose chunks contain block `block`: the largest t < count with
// first_chunk[t] <= block (first_chunk is non-decreasing, first_chunk[0] = 0,
// and block < first_chunk[count]). Binary search: log2(256) = 8 steps.
__device__ __forceinline__ int TensorOfBlock(const int64_t* first_chunk, int count,
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

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_CHUNK_TABLE_CUH_
