// The fallback attention kernels against the CPU twin (core/ops/attention.h):
// fp32 at relative 1e-5 (scales in attention_test_util.h), bf16/fp16 storage at
// 1e-2 (one rounding of out and of each gradient on store, 2^-8 for bf16, on
// top of fp32 arithmetic), at the model's shapes (B=2, 4 heads, D=64, T = 64,
// 128, 1024), an odd T (100) and an odd head_dim (40: not a multiple of the
// 32 lanes). Refusals of bad arguments run without a GPU.

#include "core/cuda/attention/flash_attention.h"

#include <cuda_runtime.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/cuda/attention/attention_test_util.h"
#include "core/cuda/gpu_test_util.h"
#include "core/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::testing::HasSubstr;

class FlashAttentionVsCpuTest : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(FlashAttentionVsCpuTest, ForwardAndBackwardMatchTheCpuOps) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const AttentionCase c = GetParam();
  const double tolerance = c.dtype == DType::kFloat32 ? 1e-5 : 1e-2;
  ExpectAttentionMatchesCpu(
      allocator, c,
      [](const Tensor& qkv, int heads, const Tensor& out, const Tensor& lse) {
        return FlashAttentionForward(nullptr, qkv, heads, out, lse);
      },
      [](const Tensor& qkv, const Tensor& out, const Tensor& lse, const Tensor& dout, int heads,
         const Tensor& dqkv) {
        return FlashAttentionBackward(nullptr, qkv, out, lse, dout, heads, dqkv);
      },
      // lse is fp32 whatever the storage: only its inputs were rounded.
      {.out = tolerance, .lse = 1e-5, .grad = tolerance}, std::random_device{}());
}

INSTANTIATE_TEST_SUITE_P(
    ModelAndOddShapes, FlashAttentionVsCpuTest,
    ::testing::Values(
        AttentionCase{.dtype = DType::kFloat32, .seq = 64},
        AttentionCase{.dtype = DType::kFloat32, .seq = 128},
        AttentionCase{.dtype = DType::kFloat32, .seq = 1024},
        AttentionCase{.dtype = DType::kFloat32, .seq = 100},
        AttentionCase{.dtype = DType::kFloat32, .batch = 1, .seq = 37, .heads = 3, .head_dim = 40},
        AttentionCase{.dtype = DType::kBFloat16, .seq = 100},
        AttentionCase{.dtype = DType::kBFloat16, .seq = 1024},
        AttentionCase{.dtype = DType::kFloat16, .seq = 100}),
    [](const ::testing::TestParamInfo<AttentionCase>& info) { return info.param.Name(); });

// The backward has no atomics and a fixed summation order: two runs on the
// same inputs agree bit for bit (the fp32 bits of every element).
TEST(FlashAttentionTest, BackwardIsDeterministic) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  std::mt19937 rng(11);
  const int64_t b = 2, t = 300, heads = 4, d = 64, c = heads * d;
  const DType dtype = DType::kFloat32;
  const Tensor qkv =
      Upload(RandomValues(rng, dtype, b * t * 3 * c, -2.0f, 2.0f), {b, t, 3 * c}, dtype, allocator);
  const Tensor dout = Upload(RandomValues(rng, dtype, b * t * c), {b, t, c}, dtype, allocator);
  const Tensor out = Poisoned({b, t, c}, dtype, allocator);
  const Tensor lse = Poisoned({b, heads, t}, DType::kFloat32, allocator);
  ASSERT_TRUE(FlashAttentionForward(nullptr, qkv, heads, out, lse).ok());
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    const Tensor dqkv = Poisoned({b, t, 3 * c}, dtype, allocator);
    ASSERT_TRUE(FlashAttentionBackward(nullptr, qkv, out, lse, dout, heads, dqkv).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<float> grads = dqkv.ToFloatVector();
    if (run == 0) {
      first = grads;
      continue;
    }
    ASSERT_EQ(grads.size(), first.size());
    int64_t differing = 0;
    for (size_t k = 0; k < grads.size(); ++k) {
      differing += std::memcmp(&grads[k], &first[k], sizeof(float)) != 0;
    }
    EXPECT_EQ(differing, 0) << "of " << grads.size() << " gradient elements";
  }
}

TEST(FlashAttentionTest, RefusesAHeadDimBeyondItsTiles) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  // 1 head of 256: qkv's last dim 768.
  const Tensor qkv = Tensor::Empty({1, 8, 768}, DType::kFloat32, allocator);
  const Tensor out = Tensor::Empty({1, 8, 256}, DType::kFloat32, allocator);
  const Tensor lse = Tensor::Empty({1, 1, 8}, DType::kFloat32, allocator);
  const absl::Status status = FlashAttentionForward(nullptr, qkv, 1, out, lse);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("head_dim 256 exceeds"));
}

// These fail before anything touches a device: they run everywhere.
TEST(FlashAttentionTest, RefusesBadArgumentsBeforeTheDevice) {
  const Tensor qkv = Tensor::Empty({2, 5, 36}, DType::kFloat32);
  const Tensor out = Tensor::Empty({2, 5, 12}, DType::kFloat32);
  const Tensor lse = Tensor::Empty({2, 3, 5}, DType::kFloat32);
  absl::Status status = FlashAttentionForward(nullptr, qkv, 3, out, lse);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("FlashAttentionForward: qkv is on cpu: must be on a CUDA device"));
  status = FlashAttentionBackward(nullptr, qkv, out, lse, out, 5, qkv);  // 36 != 3 * 5 * D
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("FlashAttentionBackward: qkv"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("num_heads (5)"));
}

}  // namespace
}  // namespace trident::cuda
