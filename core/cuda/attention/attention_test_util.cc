#include "core/cuda/attention/attention_test_util.h"

#include <cuda_runtime.h>

#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/attention.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

// Root mean square of the elements k of `v` with group(k) == g.
template <typename GroupOf>
double Rms(const std::vector<float>& v, GroupOf group, int g) {
  double sum = 0.0;
  int64_t n = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    if (group(k) != g) continue;
    sum += static_cast<double>(v[k]) * v[k];
    ++n;
  }
  return n == 0 ? 0.0 : std::sqrt(sum / n);
}

// scale[k] = max(|expected[k]|, RMS of expected over k's group).
template <typename GroupOf>
std::vector<float> MagnitudeOrRms(const std::vector<float>& expected, GroupOf group, int groups) {
  std::vector<double> rms(groups);
  for (int g = 0; g < groups; ++g) rms[g] = Rms(expected, group, g);
  std::vector<float> scale(expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    scale[k] = static_cast<float>(std::max<double>(std::abs(expected[k]), rms[group(k)]));
  }
  return scale;
}

}  // namespace

std::string AttentionCase::Name() const {
  return absl::StrCat(DTypeName(dtype), "_B", batch, "_T", seq, "_H", heads, "_D", head_dim);
}

void ExpectAttentionMatchesCpu(const std::shared_ptr<Allocator>& allocator, const AttentionCase& c,
                               const AttentionForwardFn& forward,
                               const AttentionBackwardFn& backward,
                               const AttentionTolerances& tolerances, uint32_t seed) {
  SCOPED_TRACE(absl::StrCat(c.Name(), " seed ", seed));
  std::mt19937 rng(seed);
  const int64_t channels = c.heads * c.head_dim;
  const Shape qkv_shape = {c.batch, c.seq, 3 * channels};
  const Shape out_shape = {c.batch, c.seq, channels};
  const Shape lse_shape = {c.batch, c.heads, c.seq};
  const int64_t qkv_n = c.batch * c.seq * 3 * channels;
  const int64_t out_n = c.batch * c.seq * channels;

  const std::vector<float> qkv = RandomValues(rng, c.dtype, qkv_n, -2.0f, 2.0f);
  const std::vector<float> dout = RandomValues(rng, c.dtype, out_n, -1.0f, 1.0f);
  const Tensor gpu_qkv = Upload(qkv, qkv_shape, c.dtype, allocator);
  const Tensor gpu_dout = Upload(dout, out_shape, c.dtype, allocator);
  const Tensor gpu_out = Poisoned(out_shape, c.dtype, allocator);
  const Tensor gpu_lse = Poisoned(lse_shape, DType::kFloat32, allocator);
  const Tensor gpu_dqkv = Poisoned(qkv_shape, c.dtype, allocator);

  const absl::Status forward_status = forward(gpu_qkv, c.heads, gpu_out, gpu_lse);
  ASSERT_TRUE(forward_status.ok()) << forward_status;
  const absl::Status backward_status =
      backward(gpu_qkv, gpu_out, gpu_lse, gpu_dout, c.heads, gpu_dqkv);
  ASSERT_TRUE(backward_status.ok()) << backward_status;
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  // The CPU twin in fp32 on the same (rounded) values.
  const ExecContext cpu = ExecContext::Cpu();
  const Tensor cpu_qkv = Tensor::FromVector(qkv, qkv_shape);
  const Tensor cpu_out = Tensor::Empty(out_shape, DType::kFloat32);
  const Tensor cpu_lse = Tensor::Empty(lse_shape, DType::kFloat32);
  const Tensor cpu_dqkv = Tensor::Empty(qkv_shape, DType::kFloat32);
  ops::AttentionForward(cpu, cpu_qkv, c.heads, cpu_out, cpu_lse);
  ops::AttentionBackward(cpu, cpu_qkv, cpu_out, cpu_lse, Tensor::FromVector(dout, out_shape),
                         c.heads, cpu_dqkv);

  const std::vector<float> expected_out = cpu_out.ToVector<float>();
  const std::vector<float> expected_lse = cpu_lse.ToVector<float>();
  const std::vector<float> expected_dqkv = cpu_dqkv.ToVector<float>();
  auto one_group = [](size_t) { return 0; };
  // dqkv's last dim is [3][H][D]: element k is in third (k / C) % 3.
  auto third = [channels](size_t k) { return static_cast<int>((k / channels) % 3); };

  ExpectClose(gpu_out.ToFloatVector(), expected_out, MagnitudeOrRms(expected_out, one_group, 1),
              tolerances.out, "out");
  ExpectCloseRelative(gpu_lse.ToFloatVector(), expected_lse, tolerances.lse, 1.0f, "lse");
  ExpectClose(gpu_dqkv.ToFloatVector(), expected_dqkv, MagnitudeOrRms(expected_dqkv, third, 3),
              tolerances.grad, "dqkv");
}

}  // namespace trident::cuda
