#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/device_info.h"

namespace trident::cuda {
namespace {

absl::Status CudaError(cudaError_t error, const char* what) {
  return absl::UnavailableError(
      absl::StrCat(what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
}

#define TRIDENT_CUDA_RETURN_IF_ERROR(call)            \
  do {                                                \
    const cudaError_t trident_cuda_error = (call);    \
    if (trident_cuda_error != cudaSuccess) {          \
      return CudaError(trident_cuda_error, #call);    \
    }                                                 \
  } while (0)

__global__ void SaxpyKernel(int n, float a, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

}  // namespace

std::string CudaVersionString(int version) {
  return absl::StrCat(version / 1000, ".", (version % 1000) / 10);
}

absl::StatusOr<CudaSystem> QueryCudaSystem() {
  CudaSystem system;
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaRuntimeGetVersion(&system.runtime_version));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaDriverGetVersion(&system.driver_version));
  int count = 0;
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count));
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop;
    TRIDENT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, d));
    DeviceInfo info;
    info.index = d;
    info.name = prop.name;
    info.compute_major = prop.major;
    info.compute_minor = prop.minor;
    info.multiprocessors = prop.multiProcessorCount;
    info.global_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
    info.memory_bus_width_bits = prop.memoryBusWidth;
    info.l2_cache_bytes = prop.l2CacheSize;
    TRIDENT_CUDA_RETURN_IF_ERROR(cudaSetDevice(d));
    size_t free_bytes = 0, total_bytes = 0;
    TRIDENT_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    info.free_memory_bytes = static_cast<int64_t>(free_bytes);
    system.devices.push_back(std::move(info));
  }
  return system;
}

absl::Status RunSaxpySelfTest(int device, int n) {
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 97) * 0.5f;
    y[i] = static_cast<float>(i % 13) - 6.0f;
  }
  const float a = 1.5f;
  float* dx = nullptr;
  float* dy = nullptr;
  const size_t bytes = sizeof(float) * static_cast<size_t>(n);
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaMalloc(&dx, bytes));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaMalloc(&dy, bytes));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaMemcpy(dx, x.data(), bytes, cudaMemcpyHostToDevice));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaMemcpy(dy, y.data(), bytes, cudaMemcpyHostToDevice));
  const int threads = 256;
  SaxpyKernel<<<(n + threads - 1) / threads, threads>>>(n, a, dx, dy);
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  std::vector<float> result(n);
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaMemcpy(result.data(), dy, bytes, cudaMemcpyDeviceToHost));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaFree(dx));
  TRIDENT_CUDA_RETURN_IF_ERROR(cudaFree(dy));
  for (int i = 0; i < n; ++i) {
    const float expected = a * x[i] + y[i];  // Exact: small integers and halves.
    if (result[i] != expected) {
      return absl::InternalError(absl::StrCat("saxpy element ", i, " is ", result[i],
                                              ", expected ", expected));
    }
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
