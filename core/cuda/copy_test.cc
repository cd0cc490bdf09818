#include "core/cuda/copy.h"

#include <cuda_runtime.h>

#include <vector>

#include "core/cuda/cuda_allocator.h"
#include "core/cuda/gpu_test_util.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(CopyTensorAsyncTest, RefusesMismatchesBeforeTouchingCuda) {
  const Tensor a = Tensor::Zeros({2, 3}, DType::kFloat32);
  const Tensor b = Tensor::Zeros({3, 2}, DType::kFloat32);
  const absl::Status shape = CopyTensorAsync(nullptr, a, b);
  EXPECT_EQ(shape.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(shape.message().find("src is fp32[2, 3], dst is fp32[3, 2]"), std::string::npos)
      << shape;
  const absl::Status undefined = CopyTensorAsync(nullptr, a, Tensor());
  EXPECT_NE(undefined.message().find("dst is undefined"), std::string::npos) << undefined;
  const Tensor wide = Tensor::Zeros({2, 6}, DType::kFloat32);
  const absl::Status strided = CopyTensorAsync(nullptr, wide.Slice(1, 0, 3), a);
  EXPECT_NE(strided.message().find("src must be contiguous"), std::string::npos) << strided;
}

TEST(CopyTensorAsyncTest, RoundTripsThroughTwoDeviceTensors) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  std::vector<float> values(1000);
  for (int i = 0; i < 1000; ++i) values[i] = 0.5f * i - 7.0f;
  const Tensor host = Tensor::FromVector(values, {10, 100});
  const Tensor first = Tensor::Empty({10, 100}, DType::kFloat32, allocator);
  const Tensor second = Tensor::Empty({10, 100}, DType::kFloat32, allocator);
  const Tensor back = Tensor::Zeros({10, 100}, DType::kFloat32);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_TRUE(CopyTensorAsync(stream, host, first).ok());
  ASSERT_TRUE(CopyTensorAsync(stream, first, second).ok());
  ASSERT_TRUE(CopyTensorAsync(stream, second, back).ok());
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(back.ToVector<float>(), values);
}

}  // namespace
}  // namespace trident::cuda
