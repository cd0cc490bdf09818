#ifndef TRIDENT_CORE_CUDA_OPS_PACK_IO_CUH_
#define TRIDENT_CORE_CUDA_OPS_PACK_IO_CUH_

// Vectorised loads and stores for the elementwise kernels of core/cuda/ops.
//
// A thread handles one "pack" of kPack consecutive elements. When every
// operand's base pointer is aligned to a whole pack (checked on the host by
// PackAligned), a full pack moves as one aligned struct: 16 bytes for bf16 and
// fp16 (one 128-bit load), 32 bytes for fp32 (two). The last pack of a tensor
// may be partial: it is read and written element by element, so any length
// works. Unaligned operands use packs of one element (the scalar fallback).
//
// Included by .cu files only (nvcc); a textual header.

#include <cstdint>
#include <type_traits>

#include "core/cuda/float_io.cuh"

namespace trident::cuda {

// Elements per thread of the vectorised kernels.
inline constexpr int kPack = 8;

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Whether `p` may be read as Pack<T, kPack> at every multiple of kPack elements.
template <typename T>
__host__ __device__ __forceinline__ bool PackAligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * kPack) == 0;
}

// out[k] = element k of p as fp32, for k < count (count <= N); the rest 0.
// p must be Pack-aligned when count == N.
template <int N, typename T>
__device__ __forceinline__ void LoadPack(const T* p, int count, float (&out)[N]) {
  if (count == N) {
    const Pack<T, N> pack = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = Load(&pack.v[k]);
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = k < count ? Load(p + k) : 0.0f;
  }
}

// Element k of p = in[k] rounded to T (nearest even), for k < count.
template <int N, typename T>
__device__ __forceinline__ void StorePack(T* p, int count, const float (&in)[N]) {
  if (count == N) {
    Pack<T, N> pack;
#pragma unroll
    for (int k = 0; k < N; ++k) Store(&pack.v[k], in[k]);
    *reinterpret_cast<Pack<T, N>*>(p) = pack;
  } else {
#pragma unroll
    for (int k = 0; k < N; ++k) {
      if (k < count) Store(p + k, in[k]);
    }
  }
}

// Calls launch(std::integral_constant<int, N>{}) with N = kPack when
// `aligned` (every operand PackAligned), else N = 1, and returns its status.
template <typename Launch>
absl::Status WithPackWidth(bool aligned, Launch&& launch) {
  if (aligned) return launch(std::integral_constant<int, kPack>{});
  return launch(std::integral_constant<int, 1>{});
}

// Blocks of `threads` for a one-pack-per-thread grid over n elements.
inline unsigned BlocksForPacks(int64_t n, int pack, int threads) {
  return BlocksFor((n + pack - 1) / pack, threads);
}

// The first element of this thread's pack in a one-pack-per-thread grid.
template <int N>
__device__ __forceinline__ int64_t PackStart() {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * N;
}

// How many of the pack's elements exist: min(N, n - start), <= 0 past the end.
template <int N>
__device__ __forceinline__ int PackCount(int64_t start, int64_t n) {
  const int64_t left = n - start;
  return left < N ? static_cast<int>(left) : N;
}

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_PACK_IO_CUH_
