#ifndef TRIDENT_CORE_OPS_TEST_UTIL_H_
#define TRIDENT_CORE_OPS_TEST_UTIL_H_

// Helpers for the op tests: reproducible random inputs, comparisons against
// double-precision references, and central finite differences.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/types/span.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops::testing {

// Uniform values in [-scale, scale), reproducible from `seed`.
std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f);
Tensor RandomTensor(absl::Span<const int64_t> shape, uint32_t seed, float scale = 1.0f);

std::vector<double> ToDouble(const std::vector<float>& v);

// max_i |actual_i - expected_i| / max(max_i |expected_i|, floor): the error
// relative to the size of the result. Any NaN or infinity in `actual` (or a
// size mismatch) gives +infinity, so it can never pass.
double RelativeError(const std::vector<float>& actual, const std::vector<double>& expected,
                     double floor = 1e-30);

// Passes when RelativeError(actual, expected) <= tolerance; the message names
// the worst element.
::testing::AssertionResult NearRelative(const std::vector<float>& actual,
                                        const std::vector<double>& expected, double tolerance);

// d f / d x_i by central differences with step h * max(1, |x_i|).
std::vector<double> NumericGradient(const std::function<double(const std::vector<double>&)>& f,
                                    std::vector<double> x, double h = 1e-6);

// sum_i a[i] * b[i].
double Dot(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace trident::ops::testing

#endif  // TRIDENT_CORE_OPS_TEST_UTIL_H_
