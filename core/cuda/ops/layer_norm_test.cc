// The CUDA LayerNorm kernels against their CPU twins (core/ops/layer_norm.h on
// a CPU context, which computes 16-bit storage in fp32 and rounds once) on the
// same rounded random inputs; outputs poisoned with NaN before each run, NaN
// never passes.
//
// Tolerances, each relative to the element's magnitude scale (which bounds the
// rounding error of any summation order, so the check stays tight where
// values cancel): fp32 1e-5, bf16/fp16 1e-2 (one rounding of the output, 2^-8
// or 2^-11, plus fp32 noise). The per-row statistics are fp32 whatever the
// storage and always checked at 1e-5. Scales:
//   y: max(|y|, 1) (inputs, gamma and beta are O(1), so |y| <~ 3 and the
//      mean/rstd errors enter in units of |gamma| <= 1);
//   mean: the row's mean |x|;  rstd: |rstd|;
//   dx: rstd * (|dy gamma| + mean|dy gamma| + |xhat| mean|dy gamma xhat|), the
//      terms of dx = rstd (g - mean(g) - xhat mean(g xhat));
//   dgamma, dbeta: |initial value| + sum over rows of |dy xhat| (or |dy|).
//
// The refusal tests use host tensors: the argument checks run before anything
// touches a device, so they run (and must pass) on machines without a GPU.

#include "core/cuda/ops/layer_norm.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/layer_norm.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

constexpr double kStatisticsTolerance = 1e-5;

const std::shared_ptr<Allocator>& HostAllocator() {
  static const auto* allocator = new std::shared_ptr<Allocator>(CpuAllocator::Create());
  return *allocator;
}

struct Case {
  DType dtype;
  int64_t rows, cols;
  double tolerance;
  std::string Name() const { return absl::StrCat(DTypeName(dtype), "_", rows, "x", cols); }
};

class LayerNormVsCpuTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const uint32_t seed = std::random_device{}();
    seed_trace_ =
        std::make_unique<::testing::ScopedTrace>(__FILE__, __LINE__, absl::StrCat("seed ", seed));
    rng_.seed(seed);
  }
  std::mt19937 rng_;
  std::unique_ptr<::testing::ScopedTrace> seed_trace_;
};

// Mean |x| of each row.
std::vector<float> RowMeanAbs(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t c = 0; c < cols; ++c) s += std::abs(x[r * cols + c]);
    out[r] = static_cast<float>(s / cols);
  }
  return out;
}

TEST_P(LayerNormVsCpuTest, ForwardAndFusedAddForwardMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Case c = GetParam();
  const int64_t rows = c.rows, cols = c.cols;
  const Shape shape{rows, cols};
  const ExecContext cpu = ExecContext::Cpu();
  // Inputs off-centre (mean ~ 1) so that a one-pass variance would lose digits.
  const std::vector<float> a = RandomValues(rng_, c.dtype, rows * cols, -0.5f, 1.5f);
  const std::vector<float> b = RandomValues(rng_, c.dtype, rows * cols, -0.5f, 0.5f);
  const std::vector<float> gamma = RandomValues(rng_, c.dtype, cols);
  const std::vector<float> beta = RandomValues(rng_, c.dtype, cols);
  const Tensor g_gamma = Upload(gamma, {cols}, c.dtype, gpu);
  const Tensor g_beta = Upload(beta, {cols}, c.dtype, gpu);
  const Tensor h_gamma = Upload(gamma, {cols}, c.dtype, HostAllocator());
  const Tensor h_beta = Upload(beta, {cols}, c.dtype, HostAllocator());

  // LayerNormForward(a).
  const Tensor y = Poisoned(shape, c.dtype, gpu);
  const Tensor mean = Poisoned({rows}, DType::kFloat32, gpu);
  const Tensor rstd = Poisoned({rows}, DType::kFloat32, gpu);
  ASSERT_TRUE(LayerNormForward(nullptr, Upload(a, shape, c.dtype, gpu), g_gamma, g_beta,
                               ops::kLayerNormEpsilon, y, mean, rstd)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_y = Tensor::Empty(shape, c.dtype);
  const Tensor cpu_mean = Tensor::Empty({rows}, DType::kFloat32);
  const Tensor cpu_rstd = Tensor::Empty({rows}, DType::kFloat32);
  ops::LayerNormForward(cpu, Upload(a, shape, c.dtype, HostAllocator()), h_gamma, h_beta,
                        ops::kLayerNormEpsilon, cpu_y, cpu_mean, cpu_rstd);
  ExpectCloseRelative(y.ToFloatVector(), cpu_y.ToFloatVector(), c.tolerance, 1.0f, "y");
  ExpectClose(mean.ToFloatVector(), cpu_mean.ToVector<float>(), RowMeanAbs(a, rows, cols),
              kStatisticsTolerance, "mean");
  ExpectCloseRelative(rstd.ToFloatVector(), cpu_rstd.ToVector<float>(), kStatisticsTolerance, 0.0f,
                      "rstd");

  // AddLayerNormForward(a, b): sum is a + b rounded once, bit for bit.
  const Tensor sum = Poisoned(shape, c.dtype, gpu);
  const Tensor fused_y = Poisoned(shape, c.dtype, gpu);
  const Tensor fused_mean = Poisoned({rows}, DType::kFloat32, gpu);
  const Tensor fused_rstd = Poisoned({rows}, DType::kFloat32, gpu);
  ASSERT_TRUE(AddLayerNormForward(nullptr, Upload(a, shape, c.dtype, gpu),
                                  Upload(b, shape, c.dtype, gpu), g_gamma, g_beta,
                                  ops::kLayerNormEpsilon, sum, fused_y, fused_mean, fused_rstd)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> gpu_sum = sum.ToFloatVector();
  std::vector<float> expected_sum(a.size());
  for (size_t i = 0; i < a.size(); ++i) expected_sum[i] = RoundedTo(c.dtype, a[i] + b[i]);
  ExpectClose(gpu_sum, expected_sum, std::vector<float>(a.size(), 1.0f), 0.0, "sum");
  const Tensor cpu_fused_y = Tensor::Empty(shape, c.dtype);
  ops::LayerNormForward(cpu, Upload(expected_sum, shape, c.dtype, HostAllocator()), h_gamma, h_beta,
                        ops::kLayerNormEpsilon, cpu_fused_y, cpu_mean, cpu_rstd);
  ExpectCloseRelative(fused_y.ToFloatVector(), cpu_fused_y.ToFloatVector(), c.tolerance, 1.0f,
                      "fused y");
  ExpectCloseRelative(fused_rstd.ToFloatVector(), cpu_rstd.ToVector<float>(), kStatisticsTolerance,
                      0.0f, "fused rstd");

  // The fused kernel is the unfused LayerNorm of the stored sum, bit for bit.
  const Tensor unfused_y = Poisoned(shape, c.dtype, gpu);
  ASSERT_TRUE(LayerNormForward(nullptr, Upload(gpu_sum, shape, c.dtype, gpu), g_gamma, g_beta,
                               ops::kLayerNormEpsilon, unfused_y, mean, rstd)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> unfused = unfused_y.ToFloatVector();
  ExpectClose(fused_y.ToFloatVector(), unfused, std::vector<float>(unfused.size(), 1.0f), 0.0,
              "fused y vs unfused y");

  // In place (y = x; sum = a, the residual stream updated where it lies): the
  // same bits as out of place.
  const std::vector<float> ones(rows * cols, 1.0f);
  const Tensor x_in_place = Upload(a, shape, c.dtype, gpu);
  ASSERT_TRUE(LayerNormForward(nullptr, x_in_place, g_gamma, g_beta, ops::kLayerNormEpsilon,
                               x_in_place, mean, rstd)
                  .ok());
  const Tensor a_in_place = Upload(a, shape, c.dtype, gpu);
  const Tensor y_of_in_place_sum = Poisoned(shape, c.dtype, gpu);
  ASSERT_TRUE(AddLayerNormForward(nullptr, a_in_place, Upload(b, shape, c.dtype, gpu), g_gamma,
                                  g_beta, ops::kLayerNormEpsilon, a_in_place, y_of_in_place_sum,
                                  mean, rstd)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(x_in_place.ToFloatVector(), y.ToFloatVector(), ones, 0.0, "in-place y");
  ExpectClose(a_in_place.ToFloatVector(), gpu_sum, ones, 0.0, "in-place sum");
  ExpectClose(y_of_in_place_sum.ToFloatVector(), fused_y.ToFloatVector(), ones, 0.0,
              "y of the in-place sum");
}

TEST_P(LayerNormVsCpuTest, BackwardInputAndWeightsMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Case c = GetParam();
  const int64_t rows = c.rows, cols = c.cols;
  const Shape shape{rows, cols};
  const ExecContext cpu = ExecContext::Cpu();
  const std::vector<float> x = RandomValues(rng_, c.dtype, rows * cols, -0.5f, 1.5f);
  const std::vector<float> gamma = RandomValues(rng_, c.dtype, cols);
  const std::vector<float> beta = RandomValues(rng_, c.dtype, cols);
  const std::vector<float> dy = RandomValues(rng_, c.dtype, rows * cols);
  const std::vector<float> d_residual = RandomValues(rng_, c.dtype, rows * cols);
  const Tensor h_x = Upload(x, shape, c.dtype, HostAllocator());
  const Tensor h_gamma = Upload(gamma, {cols}, c.dtype, HostAllocator());
  const Tensor h_dy = Upload(dy, shape, c.dtype, HostAllocator());
  // The saved statistics both sides use: the CPU forward's.
  const Tensor h_mean = Tensor::Empty({rows}, DType::kFloat32);
  const Tensor h_rstd = Tensor::Empty({rows}, DType::kFloat32);
  ops::LayerNormForward(cpu, h_x, h_gamma, Upload(beta, {cols}, c.dtype, HostAllocator()),
                        ops::kLayerNormEpsilon, Tensor::Empty(shape, c.dtype), h_mean, h_rstd);
  const std::vector<float> mean = h_mean.ToVector<float>();
  const std::vector<float> rstd = h_rstd.ToVector<float>();
  const Tensor g_x = Upload(x, shape, c.dtype, gpu);
  const Tensor g_gamma = Upload(gamma, {cols}, c.dtype, gpu);
  const Tensor g_mean = Upload(mean, {rows}, DType::kFloat32, gpu);
  const Tensor g_rstd = Upload(rstd, {rows}, DType::kFloat32, gpu);
  const Tensor g_dy = Upload(dy, shape, c.dtype, gpu);

  // Magnitude scales of dx, dgamma, dbeta.
  std::vector<float> dx_scale(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    double mean_abs_g = 0.0, mean_abs_gx = 0.0;
    for (int64_t k = 0; k < cols; ++k) {
      const double g = std::abs(dy[r * cols + k] * gamma[k]);
      mean_abs_g += g / cols;
      mean_abs_gx += g * std::abs((x[r * cols + k] - mean[r]) * rstd[r]) / cols;
    }
    for (int64_t k = 0; k < cols; ++k) {
      const double xhat = std::abs((x[r * cols + k] - mean[r]) * rstd[r]);
      dx_scale[r * cols + k] = static_cast<float>(
          rstd[r] * (std::abs(dy[r * cols + k] * gamma[k]) + mean_abs_g + xhat * mean_abs_gx));
    }
  }

  // LayerNormBackwardInput.
  const Tensor dx = Poisoned(shape, c.dtype, gpu);
  ASSERT_TRUE(LayerNormBackwardInput(nullptr, g_x, g_gamma, g_mean, g_rstd, g_dy, dx).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_dx = Tensor::Empty(shape, c.dtype);
  ops::LayerNormBackwardInput(cpu, h_x, h_gamma, h_mean, h_rstd, h_dy, cpu_dx);
  const std::vector<float> gpu_dx = dx.ToFloatVector();
  ExpectClose(gpu_dx, cpu_dx.ToFloatVector(), dx_scale, c.tolerance, "dx");

  // In place (dx = dy): the same bits.
  const Tensor dy_in_place = Upload(dy, shape, c.dtype, gpu);
  ASSERT_TRUE(
      LayerNormBackwardInput(nullptr, g_x, g_gamma, g_mean, g_rstd, dy_in_place, dy_in_place).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(dy_in_place.ToFloatVector(), gpu_dx, std::vector<float>(gpu_dx.size(), 1.0f), 0.0,
              "in-place dx");

  // AddLayerNormBackwardInput, in place over d_residual.
  const Tensor fused_dx = Upload(d_residual, shape, c.dtype, gpu);
  ASSERT_TRUE(
      AddLayerNormBackwardInput(nullptr, g_x, g_gamma, g_mean, g_rstd, g_dy, fused_dx, fused_dx)
          .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_fused_dx = Tensor::Empty(shape, c.dtype);
  ops::AddLayerNormBackwardInput(cpu, h_x, h_gamma, h_mean, h_rstd, h_dy,
                                 Upload(d_residual, shape, c.dtype, HostAllocator()), cpu_fused_dx);
  std::vector<float> fused_scale = dx_scale;
  for (size_t i = 0; i < fused_scale.size(); ++i) fused_scale[i] += std::abs(d_residual[i]);
  ExpectClose(fused_dx.ToFloatVector(), cpu_fused_dx.ToFloatVector(), fused_scale, c.tolerance,
              "fused dx");
  if (c.dtype == DType::kFloat32) {
    // In fp32 the fused form is the unfused one plus d_residual, bit for bit.
    std::vector<float> unfused(gpu_dx.size());
    for (size_t i = 0; i < unfused.size(); ++i) unfused[i] = gpu_dx[i] + d_residual[i];
    ExpectClose(fused_dx.ToFloatVector(), unfused, std::vector<float>(unfused.size(), 1.0f), 0.0,
                "fused dx vs unfused dx + d_residual");
  }

  // LayerNormBackwardWeights accumulates onto existing gradients.
  const std::vector<float> dgamma0 = RandomValues(rng_, c.dtype, cols);
  const std::vector<float> dbeta0 = RandomValues(rng_, c.dtype, cols);
  const Tensor dgamma = Upload(dgamma0, {cols}, c.dtype, gpu);
  const Tensor dbeta = Upload(dbeta0, {cols}, c.dtype, gpu);
  ASSERT_TRUE(LayerNormBackwardWeights(nullptr, g_x, g_mean, g_rstd, g_dy, dgamma, dbeta).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_dgamma = Upload(dgamma0, {cols}, c.dtype, HostAllocator());
  const Tensor cpu_dbeta = Upload(dbeta0, {cols}, c.dtype, HostAllocator());
  ops::LayerNormBackwardWeights(cpu, h_x, h_mean, h_rstd, h_dy, cpu_dgamma, cpu_dbeta);
  std::vector<float> dgamma_scale(cols), dbeta_scale(cols);
  for (int64_t k = 0; k < cols; ++k) {
    double sg = std::abs(dgamma0[k]), sb = std::abs(dbeta0[k]);
    for (int64_t r = 0; r < rows; ++r) {
      sg += std::abs(dy[r * cols + k] * (x[r * cols + k] - mean[r]) * rstd[r]);
      sb += std::abs(dy[r * cols + k]);
    }
    dgamma_scale[k] = static_cast<float>(sg);
    dbeta_scale[k] = static_cast<float>(sb);
  }
  const std::vector<float> first_dgamma = dgamma.ToFloatVector();
  ExpectClose(first_dgamma, cpu_dgamma.ToFloatVector(), dgamma_scale, c.tolerance, "dgamma");
  ExpectClose(dbeta.ToFloatVector(), cpu_dbeta.ToFloatVector(), dbeta_scale, c.tolerance, "dbeta");

  // Deterministic: the same call from the same start gives the same bits.
  const Tensor again = Upload(dgamma0, {cols}, c.dtype, gpu);
  ASSERT_TRUE(LayerNormBackwardWeights(nullptr, g_x, g_mean, g_rstd, g_dy, again,
                                       Upload(dbeta0, {cols}, c.dtype, gpu))
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ExpectClose(again.ToFloatVector(), first_dgamma, std::vector<float>(cols, 1.0f), 0.0,
              "dgamma run twice");
}

INSTANTIATE_TEST_SUITE_P(
    DTypesAndShapes, LayerNormVsCpuTest,
    ::testing::Values(
        // GPT-2 small's width (16-byte packs), odd widths (the scalar path), more
        // rows than one partial-sum block (64) for the weight gradients.
        Case{DType::kFloat32, 64, 768, 1e-5}, Case{DType::kFloat32, 300, 768, 1e-5},
        Case{DType::kFloat32, 37, 100, 1e-5}, Case{DType::kFloat32, 129, 33, 1e-5},
        Case{DType::kFloat32, 3, 1600, 1e-5}, Case{DType::kBFloat16, 64, 768, 1e-2},
        Case{DType::kBFloat16, 300, 768, 1e-2}, Case{DType::kBFloat16, 37, 100, 1e-2},
        Case{DType::kBFloat16, 129, 33, 1e-2}, Case{DType::kFloat16, 64, 768, 1e-2},
        Case{DType::kFloat16, 37, 100, 1e-2}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.Name(); });

TEST(LayerNormCudaTest, Fp32GradientsOfBf16WeightsMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const int64_t rows = 70, cols = 96;
  const Shape shape{rows, cols};
  const std::vector<float> x = RandomValues(rng, DType::kBFloat16, rows * cols);
  const std::vector<float> dy = RandomValues(rng, DType::kBFloat16, rows * cols);
  const std::vector<float> mean = RandomValues(rng, DType::kFloat32, rows, -0.1f, 0.1f);
  const std::vector<float> rstd = RandomValues(rng, DType::kFloat32, rows, 1.0f, 2.0f);
  const Tensor dgamma = Tensor::Zeros({cols}, DType::kFloat32, gpu);
  const Tensor dbeta = Tensor::Zeros({cols}, DType::kFloat32, gpu);
  ASSERT_TRUE(LayerNormBackwardWeights(nullptr, Upload(x, shape, DType::kBFloat16, gpu),
                                       Upload(mean, {rows}, DType::kFloat32, gpu),
                                       Upload(rstd, {rows}, DType::kFloat32, gpu),
                                       Upload(dy, shape, DType::kBFloat16, gpu), dgamma, dbeta)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> expected_g(cols), expected_b(cols), scale_g(cols), scale_b(cols);
  for (int64_t k = 0; k < cols; ++k) {
    double g = 0, b = 0, sg = 0, sb = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double term =
          static_cast<double>(dy[r * cols + k]) * ((x[r * cols + k] - mean[r]) * rstd[r]);
      g += term;
      b += dy[r * cols + k];
      sg += std::abs(term);
      sb += std::abs(dy[r * cols + k]);
    }
    expected_g[k] = static_cast<float>(g);
    expected_b[k] = static_cast<float>(b);
    scale_g[k] = static_cast<float>(sg);
    scale_b[k] = static_cast<float>(sb);
  }
  // fp32 output: the fp32 tolerance, against a double reference.
  ExpectClose(dgamma.ToFloatVector(), expected_g, scale_g, 1e-5, "fp32 dgamma");
  ExpectClose(dbeta.ToFloatVector(), expected_b, scale_b, 1e-5, "fp32 dbeta");
}

// --- Refusals: host tensors, no GPU needed. ---

std::string RefusalOf(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(LayerNormCudaTest, RefusesBadArgumentsByName) {
  const Tensor x = Tensor::Zeros({4, 100}, DType::kFloat32);
  const Tensor gamma = Tensor::Zeros({100}, DType::kFloat32);
  const Tensor beta = Tensor::Zeros({100}, DType::kFloat32);
  const Tensor y = Tensor::Zeros({4, 100}, DType::kFloat32);
  const Tensor mean = Tensor::Zeros({4}, DType::kFloat32);
  const Tensor rstd = Tensor::Zeros({4}, DType::kFloat32);
  const float eps = ops::kLayerNormEpsilon;

  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, Tensor::Zeros({99}, DType::kFloat32), beta, eps,
                                       y, mean, rstd)),
            "LayerNormForward: gamma has shape [99], expected [100]");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, gamma, Tensor::Zeros({100}, DType::kBFloat16),
                                       eps, y, mean, rstd)),
            "LayerNormForward: beta has dtype bf16, expected fp32 (the dtype of x)");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, Tensor::Zeros({4, 100}, DType::kInt32), gamma, beta,
                                       eps, y, mean, rstd)),
            "LayerNormForward: x has dtype int32, expected fp32, bf16 or fp16");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, gamma, beta, eps, y,
                                       Tensor::Zeros({4}, DType::kBFloat16), rstd)),
            "LayerNormForward: mean has dtype bf16, expected fp32");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, gamma, beta, eps, y, mean,
                                       Tensor::Zeros({5}, DType::kFloat32))),
            "LayerNormForward: rstd has 5 elements (shape [5]), expected 4");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, gamma, beta, -1.0f, y, mean, rstd)),
            "LayerNormForward: epsilon is -1, expected >= 0");
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x.Transpose(0, 1), gamma, beta, eps, y, mean, rstd))
                .rfind("LayerNormForward: x ", 0),
            0u);
  EXPECT_EQ(RefusalOf(LayerNormForward(nullptr, x, gamma, beta, eps, y, mean, rstd)),
            "LayerNormForward: x is on cpu, expected a CUDA device");

  EXPECT_EQ(
      RefusalOf(AddLayerNormForward(nullptr, x, Tensor(), gamma, beta, eps, y, y, mean, rstd)),
      "AddLayerNormForward: b is undefined");
  EXPECT_EQ(RefusalOf(AddLayerNormForward(nullptr, x, Tensor::Zeros({4, 99}, DType::kFloat32),
                                          gamma, beta, eps, x, y, mean, rstd)),
            "AddLayerNormForward: b has shape [4, 99], expected [4, 100]");

  EXPECT_EQ(RefusalOf(LayerNormBackwardInput(nullptr, x, gamma, mean, rstd,
                                             Tensor::Zeros({4, 100}, DType::kFloat16), y)),
            "LayerNormBackwardInput: dy has dtype fp16, expected fp32 (the dtype of x)");
  EXPECT_EQ(RefusalOf(AddLayerNormBackwardInput(nullptr, x, gamma, mean, rstd, y, Tensor(), y)),
            "AddLayerNormBackwardInput: d_residual is undefined");
  EXPECT_EQ(RefusalOf(LayerNormBackwardWeights(nullptr, x, mean, rstd, y, gamma,
                                               Tensor::Zeros({100}, DType::kBFloat16))),
            "LayerNormBackwardWeights: dbeta has dtype bf16, expected fp32 (the dtype of dgamma)");
  EXPECT_EQ(RefusalOf(LayerNormBackwardWeights(nullptr, x, mean, rstd, y,
                                               Tensor::Zeros({101}, DType::kFloat32), beta)),
            "LayerNormBackwardWeights: dgamma has shape [101], expected [100]");
  EXPECT_EQ(RefusalOf(LayerNormBackwardWeights(nullptr, x, mean, rstd, y, gamma, beta)),
            "LayerNormBackwardWeights: x is on cpu, expected a CUDA device");
}

}  // namespace
}  // namespace trident::cuda
