#include "core/cuda/accumulate.h"

#include "core/cuda/float_io.cuh"

namespace trident::cuda {
namespace {

template <typename T>
__global__ void AccumulateKernel(const T* src, T* dst, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) Store(dst + i, Load(dst + i) + Load(src + i));
}

}  // namespace

absl::Status AccumulateInto(cudaStream_t stream, DType dtype, const void* src, void* dst,
                            int64_t count) {
  if (count == 0) return absl::OkStatus();
  return DispatchFloatStorage(dtype, "AccumulateInto", [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    AccumulateKernel<T><<<BlocksFor(count, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(src), static_cast<T*>(dst), count);
    return LaunchStatus("AccumulateInto");
  });
}

}  // namespace trident::cuda
