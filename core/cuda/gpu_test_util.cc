#include "core/cuda/gpu_test_util.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "gtest/gtest.h"

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

std::string StorageDTypeName(const ::testing::TestParamInfo<DType>& info) {
  return std::string(DTypeName(info.param));
}

float RoundedTo(DType dtype, float value) {
  switch (dtype) {
    case DType::kBFloat16:
      return ToFloat(ToBFloat16(value));
    case DType::kFloat16:
      return ToFloat(ToFloat16(value));
    default:
      return value;
  }
}

std::vector<float> RandomValues(std::mt19937& rng, DType dtype, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> uniform(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = RoundedTo(dtype, uniform(rng));
  return v;
}

Tensor Upload(const std::vector<float>& values, absl::Span<const int64_t> shape, DType dtype,
              const std::shared_ptr<Allocator>& allocator) {
  const Tensor t = Tensor::Empty(shape, dtype, allocator);
  switch (dtype) {
    case DType::kBFloat16: {
      std::vector<BFloat16> converted;
      converted.reserve(values.size());
      for (float v : values) converted.push_back(ToBFloat16(v));
      t.CopyFrom(converted);
      break;
    }
    case DType::kFloat16: {
      std::vector<Float16> converted;
      converted.reserve(values.size());
      for (float v : values) converted.push_back(ToFloat16(v));
      t.CopyFrom(converted);
      break;
    }
    default:
      t.CopyFrom(values);
  }
  return t;
}

Tensor Poisoned(absl::Span<const int64_t> shape, DType dtype,
                const std::shared_ptr<Allocator>& allocator) {
  return Upload(std::vector<float>(NumElements(shape), std::numeric_limits<float>::quiet_NaN()),
                shape, dtype, allocator);
}

void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected,
                 const std::vector<float>& scale, double tolerance, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  ASSERT_EQ(scale.size(), expected.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
    const double bound = tolerance * scale[i];
    // Written so that a NaN on either side fails.
    if (!(error <= bound) && ++failures <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: gpu " << actual[i] << ", cpu " << expected[i]
                    << ", error " << error << " > " << bound;
    }
  }
  EXPECT_EQ(failures, 0) << what << ": " << failures << " of " << actual.size() << " elements";
}

void ExpectCloseRelative(const std::vector<float>& actual, const std::vector<float>& expected,
                         double tolerance, float floor, const std::string& what) {
  std::vector<float> scale(expected.size());
  for (size_t i = 0; i < expected.size(); ++i) scale[i] = std::max(std::abs(expected[i]), floor);
  ExpectClose(actual, expected, scale, tolerance, what);
}

}  // namespace trident::cuda
