// The CUDA GELU against its CPU twin (core/ops/gelu.h) on fresh random inputs
// in [-5, 5], for fp32, bf16 and fp16 storage and odd sizes.
//
// Forward: relative to |GELU(x)| (x s has no cancellation; the two sides'
// e^x differ by a few ulp, amplified at most |2u| < 17 times): fp32 1e-5,
// 16-bit 1e-2 (the output's one rounding). Backward, which cancels where
// GELU' crosses zero (x near -0.75): relative to the magnitude scale
// |dy| (s + |x s (1 - s) 2 u'|). For 16-bit outputs both scales are at least
// 1e-3 (an absolute 1e-5 near zero): GELU(-5) = -2e-7 is an fp16 subnormal,
// spaced 6e-8, where one rounding is not 1% of the value. Inputs are rounded
// to the storage dtype on the host, the CPU result to the output dtype;
// outputs are poisoned with NaN first and NaN never passes.

#include "core/cuda/ops/gelu.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/gelu.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

std::vector<float> RoundedAll(DType dtype, std::vector<float> values) {
  for (float& v : values) v = RoundedTo(dtype, v);
  return values;
}

double ToleranceFor(DType dtype) { return dtype == DType::kFloat32 ? 1e-5 : 1e-2; }

void ExpectMessage(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

TEST(GeluRefusalTest, NamesTheOpAndTheArgument) {
  const Tensor x = Tensor::Zeros({4, 6}, DType::kFloat32);
  ExpectMessage(GeluForward(nullptr, x, Tensor::Zeros({4, 5}, DType::kFloat32)),
                "GeluForward: y has shape [4, 5], expected [4, 6] (the shape of x)");
  ExpectMessage(GeluForward(nullptr, x, Tensor::Zeros({4, 6}, DType::kBFloat16)),
                "GeluForward: y has dtype bf16, expected fp32 (the dtype of x)");
  ExpectMessage(GeluBackward(nullptr, x, x.Transpose(0, 1), x),
                "GeluBackward: dy must be contiguous");
  ExpectMessage(GeluBackward(nullptr, x, x, Tensor::Zeros({4, 6}, DType::kInt32)),
                "GeluBackward: dx has dtype int32, expected fp32, bf16 or fp16");
  ExpectMessage(GeluForward(nullptr, x, x), "GeluForward: x is on cpu, expected a CUDA device");
}

class GeluVsCpuTest : public StorageDTypeTest {};

// One element, odd sizes, and GPT-2 small's MLP activation for 64 tokens.
constexpr int64_t kCounts[] = {1, 7, 1000, 100003, 64 * 3072};

TEST_P(GeluVsCpuTest, ForwardAndBackwardMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  const double tolerance = ToleranceFor(dtype);
  const float scale_floor = dtype == DType::kFloat32 ? 1e-30f : 1e-3f;
  for (int64_t n : kCounts) {
    const std::vector<float> x = RandomValues(rng_, dtype, n, -5.0f, 5.0f);
    const std::vector<float> dy = RandomValues(rng_, dtype, n);
    const Tensor host_x = Tensor::FromVector(x, {n});
    const Tensor cpu_y = Tensor::Empty({n}, DType::kFloat32);
    ops::GeluForward(cpu_, host_x, cpu_y);
    const Tensor cpu_dx = Tensor::Empty({n}, DType::kFloat32);
    ops::GeluBackward(cpu_, host_x, Tensor::FromVector(dy, {n}), cpu_dx);
    const std::vector<float> expected_y = RoundedAll(dtype, cpu_y.ToVector<float>());
    const std::vector<float> expected_dx = RoundedAll(dtype, cpu_dx.ToVector<float>());
    std::vector<float> backward_scale(n);
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x[i];
      const double u = 0.7978845608028654 * (xi + 0.044715 * xi * xi * xi);
      const double du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * xi * xi);
      const double s = 1.0 / (1.0 + std::exp(-2.0 * u));
      backward_scale[i] = std::max(
          scale_floor,
          static_cast<float>(std::abs(dy[i]) * (s + std::abs(xi * s * (1.0 - s) * 2.0 * du))));
    }

    const Tensor gx = Upload(x, {n}, dtype, allocator);
    const Tensor gy = Poisoned({n}, dtype, allocator);
    ASSERT_TRUE(GeluForward(nullptr, gx, gy).ok());
    const Tensor gdy = Upload(dy, {n}, dtype, allocator);
    const Tensor gdx = Poisoned({n}, dtype, allocator);
    ASSERT_TRUE(GeluBackward(nullptr, gx, gdy, gdx).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectCloseRelative(gy.ToFloatVector(), expected_y, tolerance, scale_floor,
                        absl::StrCat("GeluForward n=", n));
    ExpectClose(gdx.ToFloatVector(), expected_dx, backward_scale, tolerance,
                absl::StrCat("GeluBackward n=", n));

    // In place: dx into dy, then y into x (the backward reads x first).
    ASSERT_TRUE(GeluBackward(nullptr, gx, gdy, gdy).ok());
    ASSERT_TRUE(GeluForward(nullptr, gx, gx).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    ExpectClose(gdy.ToFloatVector(), expected_dx, backward_scale, tolerance,
                absl::StrCat("GeluBackward in place n=", n));
    ExpectCloseRelative(gx.ToFloatVector(), expected_y, tolerance, scale_floor,
                        absl::StrCat("GeluForward in place n=", n));
  }
}

INSTANTIATE_TEST_SUITE_P(StorageDTypes, GeluVsCpuTest,
                         ::testing::Values(DType::kFloat32, DType::kBFloat16, DType::kFloat16),
                         StorageDTypeName);

}  // namespace
}  // namespace trident::cuda
