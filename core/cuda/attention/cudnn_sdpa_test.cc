// cuDNN's fused attention (the backend graph of cudnn_sdpa.h): which shapes it
// takes (host rules, run everywhere), and its plan cache (needs a GPU). Its
// numbers against the CPU twin are checked through the dispatch in
// attention_test.cc.

#include "core/cuda/attention/cudnn_sdpa.h"

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/cuda/gpu_test_util.h"
#include "core/device.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::testing::HasSubstr;

constexpr AttentionShape kGpt2{.batch = 2, .seq = 1024, .heads = 12, .head_dim = 64};
constexpr int64_t kCudnn919 = 91900;

void ExpectUnimplemented(const absl::Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(needle));
}

TEST(CudnnSdpaSupportsTest, TakesTheModelsShapesInSixteenBits) {
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    for (SdpaDirection direction : {SdpaDirection::kForward, SdpaDirection::kBackward}) {
      EXPECT_TRUE(CudnnSdpaSupports(kGpt2, dtype, direction, kCudnn919).ok());
      AttentionShape odd = kGpt2;
      odd.seq = 100;
      EXPECT_TRUE(CudnnSdpaSupports(odd, dtype, direction, kCudnn919).ok());
    }
  }
}

TEST(CudnnSdpaSupportsTest, RefusesByName) {
  ExpectUnimplemented(CudnnSdpaSupports(kGpt2, DType::kFloat32, SdpaDirection::kForward, kCudnn919),
                      "dtype fp32 is not bf16 or fp16");
  AttentionShape shape = kGpt2;
  shape.head_dim = 100;
  ExpectUnimplemented(
      CudnnSdpaSupports(shape, DType::kBFloat16, SdpaDirection::kForward, kCudnn919),
      "head_dim 100 is not a multiple of 8 up to 128");
  shape.head_dim = 256;
  ExpectUnimplemented(
      CudnnSdpaSupports(shape, DType::kBFloat16, SdpaDirection::kForward, kCudnn919),
      "head_dim 256");
  ExpectUnimplemented(CudnnSdpaSupports(kGpt2, DType::kBFloat16, SdpaDirection::kForward, 8907),
                      "cuDNN 8907 is older than 90000");
  shape = kGpt2;
  shape.seq = 100;
  ExpectUnimplemented(CudnnSdpaSupports(shape, DType::kBFloat16, SdpaDirection::kBackward, 91400),
                      "T = 100 is not a multiple of 128");
  EXPECT_TRUE(CudnnSdpaSupports(shape, DType::kBFloat16, SdpaDirection::kForward, 91400).ok());
}

// cuDNN finalises every tensor and operation descriptor of both graphs without
// a GPU: attribute types, operand shapes and dtypes of each matmul, pointwise,
// reduction and reshape are checked here, before any device run.
TEST(CheckCudnnSdpaGraphTest, ForwardAndBackwardGraphsAreWellFormed) {
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    for (SdpaDirection direction : {SdpaDirection::kForward, SdpaDirection::kBackward}) {
      for (int64_t seq : {64, 100, 1024}) {
        const SdpaPlanKey key{.shape = {.batch = 2, .seq = seq, .heads = 4, .head_dim = 64},
                              .dtype = dtype,
                              .direction = direction};
        const absl::Status status = CheckCudnnSdpaGraph(key);
        EXPECT_TRUE(status.ok()) << SdpaPlanKeyToString(key) << ": " << status;
      }
    }
  }
}

TEST(CudnnSdpaTest, RefusesAnAllocatorThatIsNotCuda) {
  const auto sdpa = CudnnSdpa::Create(CpuAllocator::Create());
  EXPECT_EQ(sdpa.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudnnSdpaTest, BuildsOnePlanPerShapeDTypeAndDirection) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  auto sdpa = CudnnSdpa::Create(allocator);
  ASSERT_TRUE(sdpa.ok()) << sdpa.status();
  std::mt19937 rng(7);
  auto run = [&](int64_t seq, bool backward) {
    const AttentionShape s{.batch = 1, .seq = seq, .heads = 2, .head_dim = 64};
    const DType dtype = DType::kBFloat16;
    const Tensor qkv = Upload(RandomValues(rng, dtype, seq * 3 * s.channels()),
                              {1, seq, 3 * s.channels()}, dtype, allocator);
    const Tensor out = Poisoned({1, seq, s.channels()}, dtype, allocator);
    const Tensor lse = Poisoned({1, 2, seq}, DType::kFloat32, allocator);
    const absl::Status forward = (*sdpa)->AttentionForward(nullptr, qkv, 2, out, lse);
    ASSERT_TRUE(forward.ok()) << forward;
    if (backward) {
      const Tensor dqkv = Poisoned({1, seq, 3 * s.channels()}, dtype, allocator);
      const absl::Status status = (*sdpa)->AttentionBackward(nullptr, qkv, out, lse, out, 2, dqkv);
      ASSERT_TRUE(status.ok()) << status;
    }
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  };
  run(128, false);
  run(128, false);
  EXPECT_EQ((*sdpa)->cached_plans(), 1);
  run(128, true);
  EXPECT_EQ((*sdpa)->cached_plans(), 2);
  run(256, false);
  EXPECT_EQ((*sdpa)->cached_plans(), 3);
}

TEST(CudnnSdpaTest, RefusesFp32ByNameOnTheDevice) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  auto sdpa = CudnnSdpa::Create(allocator);
  ASSERT_TRUE(sdpa.ok()) << sdpa.status();
  const Tensor qkv = Tensor::Empty({1, 8, 192}, DType::kFloat32, allocator);
  const Tensor out = Tensor::Empty({1, 8, 64}, DType::kFloat32, allocator);
  const Tensor lse = Tensor::Empty({1, 1, 8}, DType::kFloat32, allocator);
  ExpectUnimplemented((*sdpa)->AttentionForward(nullptr, qkv, 1, out, lse), "dtype fp32");
}

}  // namespace
}  // namespace trident::cuda
