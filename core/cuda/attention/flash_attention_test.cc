// The fallback attention kernels against the CPU twin (core/ops/attention.h):
// fp32 at relative 1e-5 (scales in attention_test_util.h), bf16/fp16 storage at
// 1e-2 (one rounding of out and of each gradient on store, 2^-8 for bf16, on
// top of fp32 arithmetic), at the model's shapes (B=2, 4 heads, D=64, T = 64,
// 128, 1024), an odd T (100) and an odd head_dim (40: not a multiple of the
// 32 lanes). Refusals of bad arguments run without a GPU.

#include "core/cuda/attention/flash_attention.h"

#include <random>
#include <string>

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
    ::testing::Values(AttentionCase{.dtype = DType::kFloat32, .seq = 64},
                      AttentionCase{.dtype = DType::kFloat32, .seq = 128},
                      AttentionCase{.dtype = DType::kFloat32, .seq = 1024},
                      AttentionCase{.dtype = DType::kFloat32, .seq = 100},
                      AttentionCase{
                          .dtype = DType::kFloat32, .batch = 1, .seq = 37, .heads = 3, .head_dim = 40},
                      AttentionCase{.dtype = DType::kBFloat16, .seq = 100},
                      AttentionCase{.dtype = DType::kBFloat16, .seq = 1024},
                      AttentionCase{.dtype = DType::kFloat16, .seq = 100}),
    [](const ::testing::TestParamInfo<AttentionCase>& info) { return info.param.Name(); });

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
