// The CUDA cast with the loss scaler's finite check: every pair of float
// storage dtypes, exact against the host's own rounding of src * scale (one
// fp32 product, one rounding to nearest even: nothing to disagree on), and the
// flag: set by one Inf or one NaN among a million values, or by a finite value
// that overflows the destination; left alone otherwise; never cleared.

#include "core/cuda/ops/cast.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

constexpr DType kFloatDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kFloat16};

void ExpectMessage(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

TEST(CastRefusalTest, NamesTheArgumentAndTheRule) {
  const Tensor x = Tensor::Zeros({3, 4}, DType::kFloat32);
  int host_flag = 0;
  ExpectMessage(CastWithFiniteCheck(nullptr, x, Tensor::Zeros({4, 3}, DType::kBFloat16), 1.0f,
                                    &host_flag),
                "CastWithFiniteCheck: dst has shape [4, 3], expected [3, 4] (the shape of src)");
  ExpectMessage(CastWithFiniteCheck(nullptr, x.Transpose(0, 1),
                                    Tensor::Zeros({4, 3}, DType::kBFloat16), 1.0f, &host_flag),
                "CastWithFiniteCheck: src must be contiguous");
  ExpectMessage(
      CastWithFiniteCheck(nullptr, x, Tensor::Zeros({3, 4}, DType::kInt32), 1.0f, &host_flag),
      "CastWithFiniteCheck: dst has dtype int32, expected fp32, bf16 or fp16");
  ExpectMessage(CastWithFiniteCheck(nullptr, x, x, std::numeric_limits<float>::infinity(),
                                    &host_flag),
                "CastWithFiniteCheck: scale is inf, must be finite");
  ExpectMessage(CastWithFiniteCheck(nullptr, x, x, 1.0f, nullptr),
                "CastWithFiniteCheck: device_flag is null");
  ExpectMessage(CastWithFiniteCheck(nullptr, x, x, 1.0f, &host_flag),
                "CastWithFiniteCheck: src is on cpu, expected a CUDA device");
}

TEST(CastTest, RefusesAHostFlag) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Tensor x = Tensor::Zeros({8}, DType::kFloat32, allocator);
  int host_flag = 0;
  ExpectMessage(CastWithFiniteCheck(nullptr, x, x, 1.0f, &host_flag),
                "CastWithFiniteCheck: device_flag is not device memory");
}

int ReadFlag(const Tensor& flag) { return flag.ToVector<int32_t>()[0]; }

TEST(CastTest, EveryPairIsExactAndLeavesTheFlagAloneOnFiniteValues) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const Tensor flag = Tensor::Zeros({1}, DType::kInt32, allocator);
  int* device_flag = static_cast<int*>(flag.raw_data());
  for (DType from : kFloatDTypes) {
    for (DType to : kFloatDTypes) {
      // Odd sizes; a million and three; an unscale by 1/1024 and a scale by 8.
      for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000003}}) {
        for (float scale : {1.0f / 1024.0f, 8.0f}) {
          const std::vector<float> v = RandomValues(rng, from, n, -1000.0f, 1000.0f);
          const Tensor dst = Poisoned({n}, to, allocator);
          ASSERT_TRUE(
              CastWithFiniteCheck(nullptr, Upload(v, {n}, from, allocator), dst, scale, device_flag)
                  .ok());
          ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
          std::vector<float> expected(n);
          for (int64_t i = 0; i < n; ++i) expected[i] = RoundedTo(to, v[i] * scale);
          const std::string what = absl::StrCat(DTypeName(from), " to ", DTypeName(to), " n=", n,
                                                " scale=", scale);
          ExpectClose(dst.ToFloatVector(), expected, std::vector<float>(n, 1.0f), 0.0, what);
          ASSERT_EQ(ReadFlag(flag), 0) << what << ": flag set by finite values";
        }
      }
    }
  }
}

TEST(CastTest, OneInfOrNanAmongAMillionSetsTheFlag) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const int64_t n = 1000003;
  const Tensor flag = Tensor::Zeros({1}, DType::kInt32, allocator);
  int* device_flag = static_cast<int*>(flag.raw_data());
  for (DType from : kFloatDTypes) {
    for (DType to : kFloatDTypes) {
      const std::string what = absl::StrCat(DTypeName(from), " to ", DTypeName(to));
      for (float bad : {std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()}) {
        std::vector<float> v = RandomValues(rng, from, n);
        const int64_t where = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
        v[where] = bad;
        ASSERT_EQ(cudaMemset(device_flag, 0, sizeof(int)), cudaSuccess);
        const Tensor src = Upload(v, {n}, from, allocator);
        ASSERT_TRUE(CastWithFiniteCheck(nullptr, src, Poisoned({n}, to, allocator), 0.5f,
                                        device_flag)
                        .ok());
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        EXPECT_EQ(ReadFlag(flag), 1) << what << ": " << bad << " at " << where;
        // A clean cast afterwards does not clear it.
        v[where] = 0.0f;
        ASSERT_TRUE(CastWithFiniteCheck(nullptr, Upload(v, {n}, from, allocator),
                                        Poisoned({n}, to, allocator), 0.5f, device_flag)
                        .ok());
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        EXPECT_EQ(ReadFlag(flag), 1) << what << ": cleared by a clean cast";
      }
    }
  }
}

TEST(CastTest, AFiniteValueThatOverflowsTheDestinationSetsTheFlag) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Tensor flag = Tensor::Zeros({1}, DType::kInt32, allocator);
  int* device_flag = static_cast<int*>(flag.raw_data());
  // 70000 is beyond fp16's largest finite value (65504); 4e4 * 2 too.
  const std::vector<float> v = {1.0f, 70000.0f, -2.0f};
  ASSERT_TRUE(CastWithFiniteCheck(nullptr, Upload(v, {3}, DType::kFloat32, allocator),
                                  Poisoned({3}, DType::kFloat16, allocator), 1.0f, device_flag)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(ReadFlag(flag), 1);
  ASSERT_EQ(cudaMemset(device_flag, 0, sizeof(int)), cudaSuccess);
  const std::vector<float> w = {1.0f, 40000.0f};
  ASSERT_TRUE(CastWithFiniteCheck(nullptr, Upload(w, {2}, DType::kFloat32, allocator),
                                  Poisoned({2}, DType::kFloat16, allocator), 2.0f, device_flag)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(ReadFlag(flag), 1);
  // The same values into bf16 (8-bit exponent) are finite.
  ASSERT_EQ(cudaMemset(device_flag, 0, sizeof(int)), cudaSuccess);
  ASSERT_TRUE(CastWithFiniteCheck(nullptr, Upload(w, {2}, DType::kFloat32, allocator),
                                  Poisoned({2}, DType::kBFloat16, allocator), 2.0f, device_flag)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(ReadFlag(flag), 0);
}

}  // namespace
}  // namespace trident::cuda
