// The CUDA AdamW against its CPU twin (core/ops/optimizer.h), and
// MultiTensorAdamW against AdamWStep per tensor, bit for bit.
//
// Each step is checked from the same state on both sides: the GPU's param and
// moments are read back, the CPU takes one step from them, the GPU takes the
// same step, and the results are compared (so 10 steps test 10 updates, steps
// 1 to 10 of the bias corrections, without the two trajectories drifting
// apart). Tolerances are relative to each result's magnitude scale (the sum
// of the absolute values of its terms: beta1 |m| + (1 - beta1) |g| for m,
// v itself for v, |p decay| + |step_size m / denom| for p): fp32 1e-5; a
// 16-bit parameter 1e-2 (one rounding of its value). Both sides use the
// rounded 16-bit gradient values; NaN never passes.

#include "core/cuda/ops/adamw.h"

#include <cuda_runtime.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/optimizer.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::trident::ops::AdamWOptions;
using ::trident::ops::WeightDecay;

void ExpectMessage(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

TEST(AdamWRefusalTest, NamesTheArgumentOrOptionAndTheRule) {
  const Tensor p = Tensor::Zeros({4}, DType::kFloat32);
  const AdamWOptions ok;
  ExpectMessage(AdamWStep(nullptr, p, p, Tensor::Zeros({4}, DType::kBFloat16), p, ok,
                          WeightDecay::kApply),
                "AdamWStep: exp_avg has dtype bf16, expected fp32");
  ExpectMessage(
      AdamWStep(nullptr, p, Tensor::Zeros({3}, DType::kFloat32), p, p, ok, WeightDecay::kApply),
      "AdamWStep: grad has shape [3], expected [4] (the shape of param)");
  AdamWOptions step0;
  step0.step = 0;
  ExpectMessage(AdamWStep(nullptr, p, p, p, p, step0, WeightDecay::kApply),
                "AdamWStep: options.step is 0, must be >= 1");
  AdamWOptions beta2;
  beta2.beta2 = 1.0;
  ExpectMessage(AdamWStep(nullptr, p, p, p, p, beta2, WeightDecay::kApply),
                "AdamWStep: options.beta2 is 1, must be in [0, 1)");
  AdamWOptions nan_scale;
  nan_scale.grad_scale = std::numeric_limits<float>::quiet_NaN();
  ExpectMessage(AdamWStep(nullptr, p, p, p, p, nan_scale, WeightDecay::kApply),
                "AdamWStep: options.grad_scale is nan, must be finite");
  ExpectMessage(AdamWStep(nullptr, p, p, p, p, ok, WeightDecay::kApply),
                "AdamWStep: param is on cpu, expected a CUDA device");

  const std::vector<Tensor> two = {p, p};
  const std::vector<Tensor> bad_moment = {p, Tensor::Zeros({4}, DType::kFloat16)};
  const std::vector<WeightDecay> one_decay = {WeightDecay::kApply};
  const std::vector<WeightDecay> two_decays = {WeightDecay::kApply, WeightDecay::kSkip};
  ExpectMessage(MultiTensorAdamW(nullptr, two, two, two, two, one_decay, ok),
                "MultiTensorAdamW: decays has 1 entries, expected 2 (the number of params)");
  ExpectMessage(MultiTensorAdamW(nullptr, two, two, bad_moment, two, two_decays, ok),
                "MultiTensorAdamW: exp_avgs[1] has dtype fp16, expected fp32");
  ExpectMessage(MultiTensorAdamW(nullptr, two, two, two, two, two_decays, ok),
                "MultiTensorAdamW: params[0] is on cpu, expected a CUDA device");
}

struct Case {
  DType param_dtype, grad_dtype;
  int64_t n;
  WeightDecay decay;
  std::string Name() const {
    return absl::StrCat("param_", DTypeName(param_dtype), "_grad_", DTypeName(grad_dtype), "_n",
                        n, decay == WeightDecay::kApply ? "_decay" : "_nodecay");
  }
};

class AdamWVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(AdamWVsCpuTest, TenStepsMatchTheCpuStepByStep) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Case c = GetParam();
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const ExecContext cpu = ExecContext::Cpu();
  const int64_t n = c.n;
  const Tensor param = Upload(RandomValues(rng, c.param_dtype, n), {n}, c.param_dtype, allocator);
  const Tensor exp_avg = Tensor::Zeros({n}, DType::kFloat32, allocator);
  const Tensor exp_avg_sq = Tensor::Zeros({n}, DType::kFloat32, allocator);
  AdamWOptions options;
  options.learning_rate = 0.02;  // updates of a few % of |param|: visible
  options.weight_decay = 0.1;
  options.grad_scale = 0.5f;     // e.g. clipping
  const double param_tolerance = c.param_dtype == DType::kFloat32 ? 1e-5 : 1e-2;
  for (int64_t step = 1; step <= 10; ++step) {
    options.step = step;
    const std::vector<float> g = RandomValues(rng, c.grad_dtype, n);
    const std::vector<float> p0 = param.ToFloatVector(), m0 = exp_avg.ToFloatVector(),
                             v0 = exp_avg_sq.ToFloatVector();
    // The CPU's step from the same state.
    const Tensor cpu_p = Tensor::FromVector(p0, {n});
    const Tensor cpu_m = Tensor::FromVector(m0, {n});
    const Tensor cpu_v = Tensor::FromVector(v0, {n});
    ops::AdamWStep(cpu, cpu_p, Tensor::FromVector(g, {n}), cpu_m, cpu_v, options, c.decay);
    std::vector<float> expected_p = cpu_p.ToVector<float>();
    for (float& v : expected_p) v = RoundedTo(c.param_dtype, v);
    const std::vector<float> expected_m = cpu_m.ToVector<float>();
    const std::vector<float> expected_v = cpu_v.ToVector<float>();

    ASSERT_TRUE(AdamWStep(nullptr, param, Upload(g, {n}, c.grad_dtype, allocator), exp_avg,
                          exp_avg_sq, options, c.decay)
                    .ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

    const double beta1 = options.beta1, beta2 = options.beta2;
    const double step_size = options.learning_rate / (1.0 - std::pow(beta1, step));
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, step));
    const double decay =
        c.decay == WeightDecay::kApply ? 1.0 - options.learning_rate * options.weight_decay : 1.0;
    std::vector<float> m_scale(n), v_scale(n), p_scale(n);
    for (int64_t i = 0; i < n; ++i) {
      const double gs = std::abs(static_cast<double>(g[i]) * options.grad_scale);
      m_scale[i] = static_cast<float>(beta1 * std::abs(m0[i]) + (1.0 - beta1) * gs);
      v_scale[i] = static_cast<float>(beta2 * v0[i] + (1.0 - beta2) * gs * gs);
      const double denom = std::sqrt(expected_v[i]) / bc2_sqrt + options.epsilon;
      p_scale[i] = static_cast<float>(std::abs(p0[i] * decay) +
                                      step_size * std::abs(expected_m[i]) / denom);
    }
    const std::string at = absl::StrCat(" at step ", step);
    ExpectClose(exp_avg.ToFloatVector(), expected_m, m_scale, 1e-5, "exp_avg" + at);
    ExpectClose(exp_avg_sq.ToFloatVector(), expected_v, v_scale, 1e-5, "exp_avg_sq" + at);
    ExpectClose(param.ToFloatVector(), expected_p, p_scale, param_tolerance, "param" + at);
  }
}

INSTANTIATE_TEST_SUITE_P(
    DTypesSizesAndDecay, AdamWVsCpuTest,
    ::testing::Values(Case{DType::kFloat32, DType::kFloat32, 1, WeightDecay::kApply},
                      Case{DType::kFloat32, DType::kFloat32, 77, WeightDecay::kSkip},
                      Case{DType::kFloat32, DType::kFloat32, 100003, WeightDecay::kApply},
                      Case{DType::kFloat32, DType::kFloat32, 100003, WeightDecay::kSkip},
                      // fp32 master weights, 16-bit gradients (mixed precision).
                      Case{DType::kFloat32, DType::kBFloat16, 100003, WeightDecay::kApply},
                      Case{DType::kFloat32, DType::kFloat16, 1003, WeightDecay::kSkip},
                      // 16-bit parameters updated in fp32.
                      Case{DType::kBFloat16, DType::kBFloat16, 1003, WeightDecay::kApply},
                      Case{DType::kFloat16, DType::kFloat32, 1003, WeightDecay::kApply}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.Name(); });

// Bitwise comparison of two float tensors' values; non-finite values fail.
void ExpectSameBits(const Tensor& a, const Tensor& b, const std::string& what) {
  const std::vector<float> va = a.ToFloatVector(), vb = b.ToFloatVector();
  ASSERT_EQ(va.size(), vb.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const bool same = std::bit_cast<uint32_t>(va[i]) == std::bit_cast<uint32_t>(vb[i]);
    if ((!same || !std::isfinite(va[i])) && ++failures <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: " << va[i] << " vs " << vb[i];
    }
  }
  EXPECT_EQ(failures, 0) << what;
}

TEST(MultiTensorAdamWTest, EqualsAdamWStepPerTensorBitForBit) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  AdamWOptions options;
  options.learning_rate = 0.01;
  options.weight_decay = 0.1;
  options.step = 3;
  options.grad_scale = 0.25f;
  // A model-like list (odd sizes, an empty tensor, chunk boundaries, mixed
  // dtypes and decays), then more tensors than one launch's table holds.
  for (int count : {8, 300}) {
    std::vector<Tensor> params, grads, ms, vs;      // stepped together
    std::vector<Tensor> params1, ms1, vs1;          // stepped one by one
    std::vector<WeightDecay> decays;
    for (int i = 0; i < count; ++i) {
      const int64_t sizes[] = {1, 7, 0, 65536, 65537, 200003, 3, 768};
      const int64_t n = count == 8 ? sizes[i] : 500 + 3 * i;
      const DType param_dtype = i % 4 == 3 ? DType::kBFloat16 : DType::kFloat32;
      const DType grad_dtype = i % 3 == 0 ? DType::kFloat32
                               : i % 3 == 1 ? DType::kBFloat16
                                            : DType::kFloat16;
      const std::vector<float> p = RandomValues(rng, param_dtype, n);
      const std::vector<float> g = RandomValues(rng, grad_dtype, n);
      const std::vector<float> m = RandomValues(rng, DType::kFloat32, n, -0.1f, 0.1f);
      const std::vector<float> v = RandomValues(rng, DType::kFloat32, n, 0.0f, 0.01f);
      params.push_back(Upload(p, {n}, param_dtype, allocator));
      params1.push_back(Upload(p, {n}, param_dtype, allocator));
      grads.push_back(Upload(g, {n}, grad_dtype, allocator));
      ms.push_back(Upload(m, {n}, DType::kFloat32, allocator));
      ms1.push_back(Upload(m, {n}, DType::kFloat32, allocator));
      vs.push_back(Upload(v, {n}, DType::kFloat32, allocator));
      vs1.push_back(Upload(v, {n}, DType::kFloat32, allocator));
      decays.push_back(i % 2 == 0 ? WeightDecay::kApply : WeightDecay::kSkip);
    }
    ASSERT_TRUE(MultiTensorAdamW(nullptr, params, grads, ms, vs, decays, options).ok());
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(
          AdamWStep(nullptr, params1[i], grads[i], ms1[i], vs1[i], options, decays[i]).ok());
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (int i = 0; i < count; ++i) {
      const std::string what = absl::StrCat(count, " tensors, tensor ", i);
      ExpectSameBits(params[i], params1[i], what + " param");
      ExpectSameBits(ms[i], ms1[i], what + " exp_avg");
      ExpectSameBits(vs[i], vs1[i], what + " exp_avg_sq");
    }
  }
}

}  // namespace
}  // namespace trident::cuda
