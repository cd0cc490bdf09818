#include "core/ops/cpu/vec_math.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace trident::ops::cpu {
namespace {

TEST(FastExpTest, RelativeErrorBelowTwoTenMillionthsOverTheFloatRange) {
  double worst = 0.0;
  for (double x = -87.0; x < 88.37; x += 1.37e-3) {
    const float xf = static_cast<float>(x);
    const double exact = std::exp(static_cast<double>(xf));
    worst = std::max(worst, std::fabs(FastExp(xf) - exact) / exact);
  }
  EXPECT_LT(worst, 2e-7);
}

TEST(FastExpTest, EdgeCases) {
  EXPECT_EQ(FastExp(0.0f), 1.0f);
  EXPECT_EQ(FastExp(-100.0f), 0.0f);
  EXPECT_EQ(FastExp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(FastExp(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(FastExp(std::nanf(""))));
}

TEST(FastSigmoidTest, MatchesTheDefinitionWithoutCancellation) {
  for (float x : {-30.0f, -5.0f, -1e-3f, 0.0f, 1e-4f, 2.0f, 30.0f}) {
    const double exact = 1.0 / (1.0 + std::exp(-static_cast<double>(x)));
    EXPECT_NEAR(FastSigmoid(x), exact, 2e-7 * exact) << x;
  }
}

TEST(ReductionsTest, MaxSumDotAndExpSums) {
  std::vector<float> x(37), y(37);
  for (int i = 0; i < 37; ++i) {
    x[i] = std::sin(0.7f * i) * 3.0f;
    y[i] = std::cos(0.3f * i);
  }
  double sum = 0, dot = 0, sum_exp = 0;
  float max = x[0];
  for (int i = 0; i < 37; ++i) {
    sum += x[i];
    dot += static_cast<double>(x[i]) * y[i];
    max = std::max(max, x[i]);
  }
  for (int i = 0; i < 37; ++i) sum_exp += std::exp(static_cast<double>(x[i]) - max);
  EXPECT_EQ(MaxOf(x.data(), 37), max);
  EXPECT_NEAR(SumOf(x.data(), 37), sum, 1e-5);
  EXPECT_NEAR(DotOf(x.data(), y.data(), 37), dot, 1e-5);
  EXPECT_NEAR(SumExpShift(x.data(), 37, max), sum_exp, 1e-6 * sum_exp);
  std::vector<float> z = x;
  EXPECT_NEAR(ExpShiftSum(z.data(), 37, max), sum_exp, 1e-6 * sum_exp);
  for (int i = 0; i < 37; ++i) {
    EXPECT_NEAR(z[i], std::exp(static_cast<double>(x[i]) - max), 2e-7);
  }
  EXPECT_EQ(MaxOf(x.data(), 1), x[0]);
}

}  // namespace
}  // namespace trident::ops::cpu
