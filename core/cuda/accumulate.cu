#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "absl/strings/str_cat.h"
#include "core/cuda/accumulate.h"

namespace trident::cuda {
namespace {

__device__ float Load(const float* p) { return *p; }
__device__ float Load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ float Load(const __half* p) { return __half2float(*p); }
__device__ void Store(float* p, float v) { *p = v; }
__device__ void Store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ void Store(__half* p, float v) { *p = __float2half_rn(v); }

template <typename T>
__global__ void AccumulateKernel(const T* src, T* dst, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) Store(dst + i, Load(dst + i) + Load(src + i));
}

template <typename T>
cudaError_t Launch(cudaStream_t stream, const void* src, void* dst, int64_t count) {
  constexpr int kThreads = 256;
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  AccumulateKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const T*>(src), static_cast<T*>(dst), count);
  return cudaGetLastError();
}

}  // namespace

absl::Status AccumulateInto(cudaStream_t stream, DType dtype, const void* src, void* dst,
                            int64_t count) {
  if (count == 0) return absl::OkStatus();
  cudaError_t error;
  switch (dtype) {
    case DType::kFloat32:
      error = Launch<float>(stream, src, dst, count);
      break;
    case DType::kBFloat16:
      error = Launch<__nv_bfloat16>(stream, src, dst, count);
      break;
    case DType::kFloat16:
      error = Launch<__half>(stream, src, dst, count);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("AccumulateInto: dtype ", DTypeName(dtype), " is not a float type"));
  }
  if (error != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("AccumulateInto launch: ", cudaGetErrorName(error),
                                               " (", cudaGetErrorString(error), ")"));
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
