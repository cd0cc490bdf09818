#include "core/ops/gelu.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::ToDouble;

// The tanh form in double, with 0.5 (1 + tanh(u)) written as the identical
// 1 / (1 + exp(-2u)): in the tails 1 + tanh(u) cancels to 0 even in double.
double RefGelu(double x) {
  const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
  return x / (1.0 + std::exp(-2.0 * u));
}

TEST(GeluTest, ReferenceAgreesWithTheTanhFormWhereThatIsAccurate) {
  for (double x = -4.0; x <= 4.0; x += 0.125) {
    const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
    EXPECT_NEAR(RefGelu(x), 0.5 * x * (1.0 + std::tanh(u)), 1e-14) << x;
  }
}

std::vector<float> Range() {
  std::vector<float> v;
  for (float x = -12.0f; x <= 12.0f; x += 0.01f) v.push_back(x);
  v.push_back(0.0f);
  v.push_back(1e-6f);
  v.push_back(-1e-6f);
  return v;
}

TEST(GeluTest, ForwardMatchesTheTanhFormElementwise) {
  const std::vector<float> xs = Range();
  Tensor x = Tensor::FromVector(xs, {static_cast<int64_t>(xs.size())});
  Tensor y = Tensor::Empty(x.shape(), DType::kFloat32);
  ExecContext ctx = ExecContext::Cpu();
  GeluForward(ctx, x, y);
  const std::vector<float> yv = y.ToVector<float>();
  // Per-element relative error (not just relative to the largest output):
  // the tails, where GELU(x) is tiny, must be right too.
  for (size_t i = 0; i < xs.size(); ++i) {
    const double ref = RefGelu(xs[i]);
    ASSERT_LE(std::fabs(yv[i] - ref), 1e-5 * std::fabs(ref) + 1e-30) << "x = " << xs[i];
  }
  GeluForward(ctx, x, x);  // In place.
  EXPECT_EQ(x.ToVector<float>(), yv);
}

TEST(GeluTest, BackwardMatchesFiniteDifferences) {
  const std::vector<float> xs = Range();
  const int64_t n = static_cast<int64_t>(xs.size());
  Tensor x = Tensor::FromVector(xs, {n});
  Tensor dy = testing::RandomTensor({n}, 1);
  Tensor dx = Tensor::Empty({n}, DType::kFloat32);
  ExecContext ctx = ExecContext::Cpu(2);
  GeluBackward(ctx, x, dy, dx);
  // GELU acts elementwise, so the gradient of sum(GELU(x) * dy) is
  // dy_i * GELU'(x_i): a central difference per element.
  const std::vector<float> dyv = dy.ToVector<float>();
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i) {
    const double h = 1e-6 * std::max(1.0, std::fabs(static_cast<double>(xs[i])));
    expected[i] = dyv[i] * (RefGelu(xs[i] + h) - RefGelu(xs[i] - h)) / (2 * h);
  }
  EXPECT_TRUE(NearRelative(dx.ToVector<float>(), expected, 1e-5));
  GeluBackward(ctx, x, dy, dy);  // In place over dy.
  EXPECT_EQ(dy.ToVector<float>(), dx.ToVector<float>());
}

TEST(GeluDeathTest, MismatchedShapesAbort) {
  ExecContext ctx = ExecContext::Cpu();
  EXPECT_DEATH(
      GeluForward(ctx, Tensor::Empty({3}, DType::kFloat32), Tensor::Empty({4}, DType::kFloat32)),
      "y is fp32\\[4\\] cpu but must have the shape of x \\[3\\]");
}

}  // namespace
}  // namespace trident::ops
