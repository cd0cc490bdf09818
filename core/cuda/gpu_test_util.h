#ifndef TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_
#define TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_

// What every GPU test needs first: GPU 0's allocator, or the reason there is
// none, so that the test skips itself cleanly on a machine without a device
// (CI builds these tests everywhere; they run on the device machine).

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "core/cuda/cuda_allocator.h"

namespace trident::cuda {

// GPU 0's caching allocator named `name`, or null with `*reason` saying why
// (no device, or the allocator could not be created).
std::shared_ptr<CudaCachingAllocator> GpuAllocatorOrNull(absl::string_view name,
                                                         std::string* reason);

}  // namespace trident::cuda

// Declares `allocator` (GPU 0's) in a test body, or skips the test.
#define TRIDENT_SKIP_WITHOUT_GPU(allocator)                                       \
  std::string allocator##_skip_reason;                                            \
  auto allocator = ::trident::cuda::GpuAllocatorOrNull(#allocator,                \
                                                       &allocator##_skip_reason); \
  if (allocator == nullptr) GTEST_SKIP() << "no CUDA device here: " << allocator##_skip_reason

#endif  // TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_
