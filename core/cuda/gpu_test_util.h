#ifndef TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_
#define TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_

// What every GPU test needs: GPU 0's allocator, or the reason there is none,
// so that the test skips itself cleanly on a machine without a device (CI
// builds these tests everywhere; they run on the device machine); and the
// comparison of a GPU op against its CPU twin: inputs rounded to the storage
// dtype on the host (both sides compute from the same values), outputs
// poisoned with NaN before each run, every element within a tolerance of its
// own scale, NaN never passing.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/cuda/cuda_allocator.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::cuda {

// GPU 0's caching allocator named `name`, or null with `*reason` saying why
// (no device, or the allocator could not be created).
std::shared_ptr<CudaCachingAllocator> GpuAllocatorOrNull(absl::string_view name,
                                                         std::string* reason);

// `value` rounded to `dtype` (to nearest even; fp32 and integer dtypes: itself).
float RoundedTo(DType dtype, float value);

// `n` values uniform in [lo, hi), each already rounded to `dtype`.
std::vector<float> RandomValues(std::mt19937& rng, DType dtype, int64_t n, float lo = -1.0f,
                                float hi = 1.0f);

// A tensor of `dtype` on `allocator`'s device holding `values` (converted).
Tensor Upload(const std::vector<float>& values, absl::Span<const int64_t> shape, DType dtype,
              const std::shared_ptr<Allocator>& allocator);

// A tensor of `dtype` on `allocator`'s device full of quiet NaNs.
Tensor Poisoned(absl::Span<const int64_t> shape, DType dtype,
                const std::shared_ptr<Allocator>& allocator);

// Adds a gtest failure (the first few elements named) unless every
// |actual[i] - expected[i]| <= tolerance * scale[i]; NaN fails.
void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected,
                 const std::vector<float>& scale, double tolerance, const std::string& what);

// The same with scale[i] = max(|expected[i]|, floor): relative error where
// values are large, absolute error `tolerance * floor` near zero.
void ExpectCloseRelative(const std::vector<float>& actual, const std::vector<float>& expected,
                         double tolerance, float floor, const std::string& what);

// A GPU-vs-CPU test per storage dtype: a fresh seed per test (tests print
// it with their failures) and a CPU context for the twin.
class StorageDTypeTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    seed_ = std::random_device{}();
    rng_.seed(seed_);
  }
  uint32_t seed_ = 0;
  std::mt19937 rng_;
  const ExecContext cpu_ = ExecContext::Cpu();
};

// "fp32", "bf16", "fp16": the parameter's name in test names.
std::string StorageDTypeName(const ::testing::TestParamInfo<DType>& info);

// For death tests of device-side traps: runs `launch` (returning the queued
// status), synchronises, prints CUDA's verdict and aborts on an error.
template <typename Launch>
void LaunchSyncAndAbortOnError(Launch launch) {
  const absl::Status queued = launch();
  const cudaError_t error = cudaDeviceSynchronize();
  std::fprintf(stderr, "queued: %s; synchronised: %s\n", queued.ToString().c_str(),
               cudaGetErrorName(error));
  if (error != cudaSuccess) std::abort();
}

}  // namespace trident::cuda

// Declares `allocator` (GPU 0's) in a test body, or skips the test.
#define TRIDENT_SKIP_WITHOUT_GPU(allocator)                                       \
  std::string allocator##_skip_reason;                                            \
  auto allocator = ::trident::cuda::GpuAllocatorOrNull(#allocator,                \
                                                       &allocator##_skip_reason); \
  if (allocator == nullptr) GTEST_SKIP() << "no CUDA device here: " << allocator##_skip_reason

#endif  // TRIDENT_CORE_CUDA_GPU_TEST_UTIL_H_
