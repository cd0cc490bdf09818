// The CUDA reductions against their CPU twins (core/ops/reduction.h).
//
// Both sides accumulate in double, in different orders, so they agree to
// double rounding: |gpu - cpu| <= 2 n 2^-53 sum_i |term_i| (each side's
// summation error is below (n - 1) 2^-53 of the sum of the absolute terms),
// which is tight and never passes a NaN (the comparison is !(error <= bound)).
// Inputs are rounded to the storage dtype on the host and the CPU sums the
// same fp32 values.

#include "core/cuda/ops/reduction.h"

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
#include "core/ops/reduction.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

constexpr double kDoubleEpsilon = 0x1p-53;

void ExpectMessage(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

// |actual - expected| <= 2 n 2^-53 abs_sum.
void ExpectDoubleSumClose(double actual, double expected, int64_t n, double abs_sum,
                          const std::string& what) {
  const double bound = 2.0 * static_cast<double>(n) * kDoubleEpsilon * abs_sum;
  EXPECT_TRUE(std::abs(actual - expected) <= bound)
      << what << ": gpu " << actual << ", cpu " << expected << ", error "
      << std::abs(actual - expected) << " > " << bound;
}

TEST(ReductionRefusalTest, NamesTheOpAndTheArgument) {
  ExpectMessage(Sum(nullptr, Tensor::Zeros({3}, DType::kInt32)).status(),
                "Sum: x has dtype int32, expected fp32, bf16 or fp16");
  ExpectMessage(SumOfSquares(nullptr, Tensor()).status(), "SumOfSquares: x is undefined");
  ExpectMessage(SumOfSquares(nullptr, Tensor::Zeros({3}, DType::kFloat32)).status(),
                "SumOfSquares: x is on cpu, expected a CUDA device");
  const Tensor ok = Tensor::Zeros({2, 3}, DType::kFloat32);
  const std::vector<Tensor> strided = {ok, ok.Transpose(0, 1)};
  ExpectMessage(MultiTensorSumOfSquares(nullptr, strided).status(),
                "MultiTensorSumOfSquares: tensors[1] must be contiguous");
  const std::vector<Tensor> host = {ok, ok};
  ExpectMessage(MultiTensorSumOfSquares(nullptr, host).status(),
                "MultiTensorSumOfSquares: tensors[0] is on cpu, expected a CUDA device");
  ExpectMessage(MultiTensorSum(nullptr, strided).status(),
                "MultiTensorSum: tensors[1] must be contiguous");
  const std::vector<Tensor> ids = {ok, Tensor::Zeros({3}, DType::kInt32)};
  ExpectMessage(MultiTensorSum(nullptr, ids).status(),
                "MultiTensorSum: tensors[1] has dtype int32, expected fp32, bf16 or fp16");
}

class ReductionVsCpuTest : public StorageDTypeTest {};

TEST_P(ReductionVsCpuTest, SumAndSumOfSquaresMatchTheCpuAndRepeatBitForBit) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  // One element; odd sizes; one 64 Ki chunk and one element more; 1e6 + 3.
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{65536}, int64_t{65537}, int64_t{1000003}}) {
    const std::vector<float> v = RandomValues(rng_, dtype, n);
    const Tensor x = Upload(v, {n}, dtype, allocator);
    const Tensor host = Tensor::FromVector(v, {n});
    double abs_sum = 0.0, square_sum = 0.0;
    for (float f : v) {
      abs_sum += std::abs(f);
      square_sum += static_cast<double>(f) * f;
    }
    const absl::StatusOr<double> sum = Sum(nullptr, x);
    const absl::StatusOr<double> squares = SumOfSquares(nullptr, x);
    ASSERT_TRUE(sum.ok()) << sum.status();
    ASSERT_TRUE(squares.ok()) << squares.status();
    ExpectDoubleSumClose(*sum, ops::Sum(cpu_, host), n, abs_sum, absl::StrCat("Sum n=", n));
    ExpectDoubleSumClose(*squares, ops::SumOfSquares(cpu_, host), n, square_sum,
                         absl::StrCat("SumOfSquares n=", n));
    if (n == 1) {  // Nothing to reorder: exact.
      EXPECT_EQ(*sum, static_cast<double>(v[0]));
      EXPECT_EQ(*squares, static_cast<double>(v[0]) * v[0]);
    }
    const absl::StatusOr<double> sum_again = Sum(nullptr, x);
    ASSERT_TRUE(sum_again.ok());
    EXPECT_EQ(std::bit_cast<uint64_t>(*sum), std::bit_cast<uint64_t>(*sum_again))
        << "Sum n=" << n << " differs between two runs";
  }
}

TEST_P(ReductionVsCpuTest, OneInfOrNanAmongAMillionShowsInTheSumOfSquares) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  const int64_t n = 1000003;
  std::vector<float> v = RandomValues(rng_, dtype, n);
  v[n / 2 + 5] = std::numeric_limits<float>::infinity();
  const absl::StatusOr<double> with_inf = SumOfSquares(nullptr, Upload(v, {n}, dtype, allocator));
  ASSERT_TRUE(with_inf.ok());
  EXPECT_TRUE(std::isinf(*with_inf)) << *with_inf;
  v[n - 1] = std::numeric_limits<float>::quiet_NaN();
  const absl::StatusOr<double> with_nan = SumOfSquares(nullptr, Upload(v, {n}, dtype, allocator));
  ASSERT_TRUE(with_nan.ok());
  EXPECT_TRUE(std::isnan(*with_nan)) << *with_nan;
}

TEST_P(ReductionVsCpuTest, MultiTensorSumOfSquaresIsTheSumOverTensors) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  // A GPT-2-like list (odd sizes, an empty tensor, a tensor in fp32 among
  // 16-bit ones), then more tensors than one launch's table holds.
  for (int count : {6, 300}) {
    std::vector<Tensor> tensors;
    double expected = 0.0, square_sum = 0.0;
    int64_t total = 0;
    for (int i = 0; i < count; ++i) {
      const int64_t sizes[] = {1, 7, 0, 65536, 65537, 1000003};
      const int64_t n = count == 6 ? sizes[i] : 1000 + i;
      const DType t_dtype = i % 3 == 1 ? DType::kFloat32 : dtype;
      const std::vector<float> v = RandomValues(rng_, t_dtype, n);
      tensors.push_back(Upload(v, {n}, t_dtype, allocator));
      expected += ops::SumOfSquares(cpu_, Tensor::FromVector(v, {n}));
      for (float f : v) square_sum += static_cast<double>(f) * f;
      total += n;
    }
    const absl::StatusOr<double> got = MultiTensorSumOfSquares(nullptr, tensors);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectDoubleSumClose(*got, expected, total, square_sum, absl::StrCat(count, " tensors"));
    const absl::StatusOr<double> again = MultiTensorSumOfSquares(nullptr, tensors);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(std::bit_cast<uint64_t>(*got), std::bit_cast<uint64_t>(*again))
        << count << " tensors: differs between two runs";
  }
  const absl::StatusOr<double> none = MultiTensorSumOfSquares(nullptr, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0.0);
}

TEST_P(ReductionVsCpuTest, MultiTensorSumIsTheSumOverTensors) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  // Micro-batches' token losses: [B * T] each (odd sizes, an empty one), then
  // more tensors than one launch's table holds. Signed values: the bound is
  // on sum |x| (ExpectDoubleSumClose).
  for (int count : {5, 300}) {
    std::vector<Tensor> tensors;
    double expected = 0.0, abs_sum = 0.0;
    int64_t total = 0;
    for (int i = 0; i < count; ++i) {
      const int64_t sizes[] = {1, 1024, 0, 65537, 8191};
      const int64_t n = count == 5 ? sizes[i] : 513 + i;
      const std::vector<float> v = RandomValues(rng_, dtype, n);
      tensors.push_back(Upload(v, {n}, dtype, allocator));
      expected += ops::Sum(cpu_, Tensor::FromVector(v, {n}));
      for (float f : v) abs_sum += std::abs(f);
      total += n;
    }
    const absl::StatusOr<double> got = MultiTensorSum(nullptr, tensors);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectDoubleSumClose(*got, expected, total, abs_sum, absl::StrCat(count, " tensors"));
    const absl::StatusOr<double> again = MultiTensorSum(nullptr, tensors);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(std::bit_cast<uint64_t>(*got), std::bit_cast<uint64_t>(*again))
        << count << " tensors: differs between two runs";
  }
}

INSTANTIATE_TEST_SUITE_P(StorageDTypes, ReductionVsCpuTest,
                         ::testing::Values(DType::kFloat32, DType::kBFloat16, DType::kFloat16),
                         StorageDTypeName);

}  // namespace
}  // namespace trident::cuda
