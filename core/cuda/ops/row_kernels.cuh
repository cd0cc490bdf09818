#ifndef TRIDENT_CORE_CUDA_OPS_ROW_KERNELS_CUH_
#define TRIDENT_CORE_CUDA_OPS_ROW_KERNELS_CUH_

// What the row kernels of core/cuda/ops share (one block per row): block-wide
// reductions by warp shuffles in a fixed order (deterministic for a given
// block size), 16-byte packs for vectorised row access, and the host-side
// choice of the pack width and block size.
//
// Included by .cu files only (nvcc); a textual header of the row_kernels target.

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "core/tensor.h"

namespace trident::cuda {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a > b ? a : b; }
};

// op over the warp's 32 lanes by an xor butterfly; every lane gets the result.
template <typename Op>
__device__ __forceinline__ float WarpReduce(float v, Op op) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = op(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// op over the block (blockDim.x a multiple of 32, at most 1024; one-dimensional
// blocks); every thread gets the result. `scratch` is 32 floats of shared
// memory; it may be reused by the next call (the leading barrier protects it).
template <typename Op>
__device__ __forceinline__ float BlockReduce(float v, Op op, float identity, float* scratch) {
  v = WarpReduce(v, op);
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();  // A previous call's readers are done with `scratch`.
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return WarpReduce(lane < warps ? scratch[lane] : identity, op);
}

// kWidth consecutive elements moved as one load/store (16 bytes when
// kWidth = 16 / sizeof(T)); kWidth = 1 is the scalar fallback.
template <typename T, int kWidth>
struct alignas(sizeof(T) * kWidth) Pack {
  T v[kWidth];
};

template <typename T, int kWidth>
__device__ __forceinline__ Pack<T, kWidth> LoadPack(const T* p) {
  return *reinterpret_cast<const Pack<T, kWidth>*>(p);
}

template <typename T, int kWidth>
__device__ __forceinline__ void StorePack(T* p, const Pack<T, kWidth>& pack) {
  *reinterpret_cast<Pack<T, kWidth>*>(p) = pack;
}

// The storage of `t` as T*, for the device storage types Tensor::data<T>()
// does not know (__nv_bfloat16, __half); the caller checked the dtype.
template <typename T>
T* Data(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// The elements of a 16-byte pack of T.
template <typename T>
inline constexpr int kVectorWidth = static_cast<int>(16 / sizeof(T));

// Whether rows of `cols` elements of T can be read in 16-byte packs: every
// row start (row * cols) and every given base pointer 16-byte aligned.
template <typename T>
bool CanUseVectorPacks(int64_t cols, std::initializer_list<const void*> bases) {
  if (cols % kVectorWidth<T> != 0) return false;
  for (const void* p : bases) {
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// Calls fn(std::integral_constant<int, W>{}) with W the 16-byte pack width of
// T when `vector`, else 1 (the scalar fallback): one kernel template, two widths.
template <typename T, typename Fn>
auto WithPackWidth(bool vector, Fn&& fn) {
  if (vector) return fn(std::integral_constant<int, kVectorWidth<T>>{});
  return fn(std::integral_constant<int, 1>{});
}

// Threads for one block per row of `chunks` units of work: a multiple of 32
// from 32 to `max_threads`, so that every thread has at least one chunk when
// the row allows.
inline int ThreadsForRow(int64_t chunks, int max_threads = 512) {
  int64_t threads = (chunks + kWarpSize - 1) / kWarpSize * kWarpSize;
  if (threads < kWarpSize) threads = kWarpSize;
  if (threads > max_threads) threads = max_threads;
  return static_cast<int>(threads);
}

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_ROW_KERNELS_CUH_
