#include "tests/common/serial_comparison.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace trident::testing {

double RelativeDifference(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff) * 1e30;
}

double MaxAbs(const std::vector<float>& values) {
  double m = 0;
  for (float v : values) m = std::max(m, static_cast<double>(std::abs(v)));
  return m;
}

TensorsByName SplitOffKeyBias(TensorsByName tensors, int64_t hidden) {
  TensorsByName out;
  for (auto& [name, values] : tensors) {
    if (!absl::EndsWith(name, "attn.c_attn.bias")) {
      out[name] = std::move(values);
      continue;
    }
    std::vector<float> query_value(values.begin(), values.begin() + hidden);
    query_value.insert(query_value.end(), values.begin() + 2 * hidden, values.end());
    out[name + kKeyBiasSuffix] =
        std::vector<float>(values.begin() + hidden, values.begin() + 2 * hidden);
    out[name] = std::move(query_value);
  }
  return out;
}

void ExpectSameTensors(const TensorsByName& got, const TensorsByName& want, const std::string& what,
                       int64_t hidden, bool key_bias_out, double tolerance, double* worst) {
  const TensorsByName a = key_bias_out ? SplitOffKeyBias(got, hidden) : got;
  const TensorsByName b = key_bias_out ? SplitOffKeyBias(want, hidden) : want;
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, values] : b) {
    auto it = a.find(name);
    ASSERT_NE(it, a.end()) << what << ": no " << name;
    ASSERT_EQ(it->second.size(), values.size()) << what << ": " << name;
    if (absl::EndsWith(name, kKeyBiasSuffix)) {
      // Noise only: both runs keep it orders of magnitude below the learnt
      // biases (~1e-2 after 20 steps), and finite.
      EXPECT_LT(MaxAbs(it->second), 1e-4) << what << ": " << name;
      EXPECT_LT(MaxAbs(values), 1e-4) << what << ": " << name;
      continue;
    }
    const double difference = RelativeDifference(it->second, values);
    EXPECT_LT(difference, tolerance) << what << ": " << name;
    if (!(difference <= *worst)) *worst = difference;
  }
}

}  // namespace trident::testing
