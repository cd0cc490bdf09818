// The CUDA attention dispatch against the CPU twin (core/ops/attention.h):
//   cuDNN path, bf16 and fp16: relative 2e-2 (scales in attention_test_util.h).
//     Wider than the fallback's 1e-2 because cuDNN rounds the probabilities P
//     to the storage type before the P V product (and P^T, dS^T before the
//     dV, dK products): each term carries a 2^-8 (bf16) relative error on top
//     of the rounding of the stored result.
//   forced fallback (TRIDENT_CUDA_ATTENTION=fallback's option), bf16: 1e-2;
//   fp32 (always the fallback): 1e-5.
//   lse is fp32 on both paths, from the same rounded inputs: 1e-5, and 1e-4
//   for cuDNN, whose softmax works in base 2 with the scale folded in.
// Shapes: B=2, 4 heads of 64, T = 64, 128, 1024 and an odd T = 100. Each case
// also checks which implementation ran, so a silent fallback cannot pass as
// cuDNN. The environment-variable parsing runs without a GPU.

#include "core/cuda/attention/attention.h"

#include <cudnn.h>

#include <cstdlib>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/attention/attention_test_util.h"
#include "core/cuda/gpu_test_util.h"
#include "core/device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::testing::HasSubstr;

TEST(ForceFallbackFromEnvTest, AcceptsAutoAndFallbackOnly) {
  EXPECT_EQ(ForceFallbackFromEnv(nullptr).value(), false);
  EXPECT_EQ(ForceFallbackFromEnv("").value(), false);
  EXPECT_EQ(ForceFallbackFromEnv("auto").value(), false);
  EXPECT_EQ(ForceFallbackFromEnv("fallback").value(), true);
  const absl::Status bad = ForceFallbackFromEnv("cudnn_please").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()),
              HasSubstr("TRIDENT_CUDA_ATTENTION is \"cudnn_please\": must be \"auto\""));
}

TEST(CudaAttentionTest, RefusesAnAllocatorThatIsNotCuda) {
  EXPECT_EQ(CudaAttention::Create(CpuAllocator::Create()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Sets TRIDENT_CUDA_ATTENTION for one test, restoring it after.
class ScopedAttentionEnv {
 public:
  explicit ScopedAttentionEnv(const char* value) {
    const char* old = std::getenv(kName);
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    setenv(kName, value, /*overwrite=*/1);
  }
  ~ScopedAttentionEnv() {
    if (had_old_) {
      setenv(kName, old_.c_str(), 1);
    } else {
      unsetenv(kName);
    }
  }

 private:
  static constexpr const char* kName = "TRIDENT_CUDA_ATTENTION";
  bool had_old_ = false;
  std::string old_;
};

TEST(CudaAttentionTest, RefusesABadEnvironmentValueFirst) {
  const ScopedAttentionEnv env("fast");
  const absl::Status status = CudaAttention::Create(CpuAllocator::Create()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("TRIDENT_CUDA_ATTENTION is \"fast\""));
}

TEST(CudaAttentionTest, TheEnvironmentForcesTheFallback) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const ScopedAttentionEnv env("fallback");
  auto attention = CudaAttention::Create(allocator);
  ASSERT_TRUE(attention.ok()) << attention.status();
  EXPECT_EQ((*attention)->cudnn_unavailable_reason(), "TRIDENT_CUDA_ATTENTION=fallback");
  std::mt19937 rng(3);
  const DType dtype = DType::kBFloat16;
  const Tensor qkv =
      Upload(RandomValues(rng, dtype, 1 * 64 * 3 * 128), {1, 64, 384}, dtype, allocator);
  const Tensor out = Poisoned({1, 64, 128}, dtype, allocator);
  const Tensor lse = Poisoned({1, 2, 64}, DType::kFloat32, allocator);
  ASSERT_TRUE((*attention)->AttentionForward(nullptr, qkv, 2, out, lse).ok());
  EXPECT_EQ((*attention)->last_path(), AttentionPath::kFallback);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

struct DispatchCase {
  AttentionCase shape;
  bool force_fallback;
  double tolerance;
  std::string Name() const {
    return absl::StrCat(shape.Name(), force_fallback ? "_forced_fallback" : "");
  }
};

class CudaAttentionVsCpuTest : public ::testing::TestWithParam<DispatchCase> {};

TEST_P(CudaAttentionVsCpuTest, MatchesTheCpuOpsOnTheExpectedPath) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const DispatchCase c = GetParam();
  auto attention = CudaAttention::Create(allocator, {.force_fallback = c.force_fallback});
  ASSERT_TRUE(attention.ok()) << attention.status();
  CudaAttention& a = **attention;
  const bool sixteen_bit = c.shape.dtype != DType::kFloat32;
  if (sixteen_bit && !c.force_fallback) {
    ASSERT_EQ(a.cudnn_unavailable_reason(), "") << "the device's cuDNN should run attention";
  }
  const AttentionShape shape{.batch = c.shape.batch,
                             .seq = c.shape.seq,
                             .heads = c.shape.heads,
                             .head_dim = c.shape.head_dim};
  // The path each direction must take: cuDNN exactly where its rules take the
  // shape on this cuDNN (the old-cuDNN backward rule sends odd T to the fallback).
  auto expected_path = [&](SdpaDirection direction) {
    if (c.force_fallback || !sixteen_bit) return AttentionPath::kFallback;
    const int64_t loaded = static_cast<int64_t>(cudnnGetVersion());
    return CudnnSdpaSupports(shape, c.shape.dtype, direction, loaded).ok()
               ? AttentionPath::kCudnn
               : AttentionPath::kFallback;
  };
  ExpectAttentionMatchesCpu(
      allocator, c.shape,
      [&](const Tensor& qkv, int heads, const Tensor& out, const Tensor& lse) {
        absl::Status status = a.AttentionForward(nullptr, qkv, heads, out, lse);
        EXPECT_EQ(AttentionPathName(a.last_path()),
                  AttentionPathName(expected_path(SdpaDirection::kForward)));
        return status;
      },
      [&](const Tensor& qkv, const Tensor& out, const Tensor& lse, const Tensor& dout, int heads,
          const Tensor& dqkv) {
        absl::Status status = a.AttentionBackward(nullptr, qkv, out, lse, dout, heads, dqkv);
        EXPECT_EQ(AttentionPathName(a.last_path()),
                  AttentionPathName(expected_path(SdpaDirection::kBackward)));
        return status;
      },
      {.out = c.tolerance,
       .lse = sixteen_bit && !c.force_fallback ? 1e-4 : 1e-5,
       .grad = c.tolerance},
      std::random_device{}());
}

AttentionCase Bf16(int64_t seq) { return {.dtype = DType::kBFloat16, .seq = seq}; }

INSTANTIATE_TEST_SUITE_P(
    CudnnAndFallback, CudaAttentionVsCpuTest,
    ::testing::Values(
        DispatchCase{Bf16(64), false, 2e-2}, DispatchCase{Bf16(128), false, 2e-2},
        DispatchCase{Bf16(1024), false, 2e-2}, DispatchCase{Bf16(100), false, 2e-2},
        DispatchCase{{.dtype = DType::kFloat16, .seq = 128}, false, 2e-2},
        DispatchCase{Bf16(100), true, 1e-2}, DispatchCase{Bf16(1024), true, 1e-2},
        // head_dim 40 is not a multiple of 8: cuDNN is refused, the fallback runs.
        DispatchCase{{.dtype = DType::kBFloat16, .batch = 1, .seq = 37, .heads = 3, .head_dim = 40},
                     false,
                     1e-2},
        DispatchCase{{.dtype = DType::kFloat32, .seq = 100}, false, 1e-5}),
    [](const ::testing::TestParamInfo<DispatchCase>& info) { return info.param.Name(); });

}  // namespace
}  // namespace trident::cuda
