#include "core/cuda/gpu_test_util.h"

#include <cuda_runtime.h>

namespace trident::cuda {

std::shared_ptr<CudaCachingAllocator> GpuAllocatorOrNull(absl::string_view name,
                                                         std::string* reason) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    *reason = error != cudaSuccess ? cudaGetErrorString(error) : "zero devices";
    return nullptr;
  }
  auto allocator = CudaCachingAllocator::Create(0, std::string(name));
  if (!allocator.ok()) {
    *reason = allocator.status().ToString();
    return nullptr;
  }
  return *allocator;
}

}  // namespace trident::cuda
