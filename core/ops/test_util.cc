#include "core/ops/test_util.h"

#include <cmath>
#include <limits>
#include <random>

namespace trident::ops::testing {

std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

Tensor RandomTensor(absl::Span<const int64_t> shape, uint32_t seed, float scale) {
  return Tensor::FromVector(RandomVector(NumElements(shape), seed, scale), shape);
}

std::vector<double> ToDouble(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

double RelativeError(const std::vector<float>& actual, const std::vector<double>& expected,
                     double floor) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0.0, max_ref = floor;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (!std::isfinite(actual[i])) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, std::fabs(actual[i] - expected[i]));
    max_ref = std::max(max_ref, std::fabs(expected[i]));
  }
  return max_diff / max_ref;
}

::testing::AssertionResult NearRelative(const std::vector<float>& actual,
                                        const std::vector<double>& expected, double tolerance) {
  const double error = RelativeError(actual, expected);
  if (error <= tolerance) return ::testing::AssertionSuccess();
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << " vs expected " << expected.size();
  }
  size_t worst = 0;
  double worst_diff = -1.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::isfinite(actual[i]) ? std::fabs(actual[i] - expected[i]) : INFINITY;
    if (diff > worst_diff) {
      worst_diff = diff;
      worst = i;
    }
  }
  return ::testing::AssertionFailure()
         << "relative error " << error << " > " << tolerance << "; worst element " << worst << ": "
         << actual[worst] << " vs expected " << expected[worst];
}

std::vector<double> NumericGradient(const std::function<double(const std::vector<double>&)>& f,
                                    std::vector<double> x, double h) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    const double step = h * std::max(1.0, std::fabs(saved));
    x[i] = saved + step;
    const double plus = f(x);
    x[i] = saved - step;
    const double minus = f(x);
    x[i] = saved;
    grad[i] = (plus - minus) / (2.0 * step);
  }
  return grad;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace trident::ops::testing
