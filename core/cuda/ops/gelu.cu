#include "core/cuda/ops/gelu.h"

#include <cstdint>

#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/pack_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

constexpr int kThreads = 256;
// The CPU's constants (core/ops/cpu/vec_math.h), to the same float.
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

__device__ __forceinline__ float Sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

__device__ __forceinline__ float Gelu(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  return x * Sigmoid(2.0f * u);
}

__device__ __forceinline__ float GeluDerivative(float x) {
  const float u = kSqrt2OverPi * (x + kCubic * x * x * x);
  const float du = kSqrt2OverPi * (1.0f + 3.0f * kCubic * x * x);
  const float s = Sigmoid(2.0f * u);
  return s + x * s * (1.0f - s) * 2.0f * du;
}

// One thread per pack of N elements (pack_io.cuh); in place is safe because a
// thread reads its elements before writing them.
template <typename T, int N>
__global__ void GeluForwardKernel(const T* x, T* y, int64_t n) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float v[N];
  LoadPack<N>(x + start, count, v);
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = Gelu(v[k]);
  StorePack<N>(y + start, count, v);
}

template <typename T, int N>
__global__ void GeluBackwardKernel(const T* x, const T* dy, T* dx, int64_t n) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float vx[N], vdy[N];
  LoadPack<N>(x + start, count, vx);
  LoadPack<N>(dy + start, count, vdy);
#pragma unroll
  for (int k = 0; k < N; ++k) vdy[k] *= GeluDerivative(vx[k]);
  StorePack<N>(dx + start, count, vdy);
}

}  // namespace

absl::Status GeluForward(cudaStream_t stream, const Tensor& x, const Tensor& y) {
  RETURN_IF_ERROR(CheckFloatOperand("GeluForward", "x", x));
  RETURN_IF_ERROR(CheckFloatOperand("GeluForward", "y", y));
  RETURN_IF_ERROR(CheckSameShape("GeluForward", "y", y, "x", x));
  RETURN_IF_ERROR(CheckSameDType("GeluForward", "y", y, "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("GeluForward", {{"x", x}, {"y", y}}));
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(x.dtype(), "GeluForward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    return WithPackWidth(PackAligned<T>(px) && PackAligned<T>(py), [&](auto width) {
      constexpr int N = decltype(width)::value;
      GeluForwardKernel<T, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(px, py, n);
      return LaunchStatus("GeluForward");
    });
  });
}

absl::Status GeluBackward(cudaStream_t stream, const Tensor& x, const Tensor& dy,
                          const Tensor& dx) {
  RETURN_IF_ERROR(CheckFloatOperand("GeluBackward", "x", x));
  RETURN_IF_ERROR(CheckFloatOperand("GeluBackward", "dy", dy));
  RETURN_IF_ERROR(CheckFloatOperand("GeluBackward", "dx", dx));
  RETURN_IF_ERROR(CheckSameShape("GeluBackward", "dy", dy, "x", x));
  RETURN_IF_ERROR(CheckSameShape("GeluBackward", "dx", dx, "x", x));
  RETURN_IF_ERROR(CheckSameDType("GeluBackward", "dy", dy, "x", x));
  RETURN_IF_ERROR(CheckSameDType("GeluBackward", "dx", dx, "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("GeluBackward", {{"x", x}, {"dy", dy}, {"dx", dx}}));
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(x.dtype(), "GeluBackward", [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x.raw_data());
    const T* pdy = static_cast<const T*>(dy.raw_data());
    T* pdx = static_cast<T*>(dx.raw_data());
    const bool aligned = PackAligned<T>(px) && PackAligned<T>(pdy) && PackAligned<T>(pdx);
    return WithPackWidth(aligned, [&](auto width) {
      constexpr int N = decltype(width)::value;
      GeluBackwardKernel<T, N>
          <<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(px, pdy, pdx, n);
      return LaunchStatus("GeluBackward");
    });
  });
}

}  // namespace trident::cuda
