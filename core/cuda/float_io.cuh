#ifndef TRIDENT_CORE_CUDA_FLOAT_IO_CUH_
#define TRIDENT_CORE_CUDA_FLOAT_IO_CUH_

// What every CUDA kernel of the project shares: loads and stores between the
// storage dtypes (fp32, bf16, fp16) and fp32 registers, the host-side dispatch
// from a DType to the storage type, and a launch's status.
//
// Kernels compute in fp32 whatever the storage (as the CPU kernels do behind
// cpu::Float16StorageBackend) and round to nearest even on store, so a GPU op
// and its CPU twin differ only by the order of their fp32 operations.
//
// Included by .cu files only (nvcc); a textual header of the float_io target.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"

namespace trident::cuda {

__device__ __forceinline__ float Load(const float* p) { return *p; }
__device__ __forceinline__ float Load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float Load(const __half* p) { return __half2float(*p); }

__device__ __forceinline__ void Store(float* p, float v) { *p = v; }
__device__ __forceinline__ void Store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void Store(__half* p, float v) { *p = __float2half_rn(v); }

// The value `v` becomes once stored as T and loaded back (fp32: itself).
template <typename T>
__device__ __forceinline__ float RoundTo(float v) {
  T stored;
  Store(&stored, v);
  return Load(&stored);
}

// Calls fn(T{}) with T the storage type of `dtype` (float, __nv_bfloat16 or
// __half) and returns what it returns (an absl::Status); INVALID_ARGUMENT
// naming `op` for a non-float dtype.
template <typename Fn>
absl::Status DispatchFloatStorage(DType dtype, absl::string_view op, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return std::forward<Fn>(fn)(float{});
    case DType::kBFloat16:
      return std::forward<Fn>(fn)(__nv_bfloat16{});
    case DType::kFloat16:
      return std::forward<Fn>(fn)(__half{});
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": dtype ", DTypeName(dtype), " is not a float type"));
  }
}

// The status of the last launch on this thread: UNAVAILABLE with CUDA's error
// name and text, naming `op`, when it failed.
inline absl::Status LaunchStatus(absl::string_view op) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(op, " launch: ", cudaGetErrorName(error), " (",
                                             cudaGetErrorString(error), ")"));
}

// Blocks for a grid of `count` elements at `threads` per block (at least 1).
inline unsigned BlocksFor(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks > 0 ? blocks : 1);
}

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_FLOAT_IO_CUH_
