#include "data_parallel/compression/topk.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/comm/communicator.h"

namespace trident::data_parallel {

std::vector<int32_t> LargestMagnitudes(absl::Span<const float> v, int64_t k) {
  TRIDENT_CHECK(k >= 0 && k <= static_cast<int64_t>(v.size())) << k << " of " << v.size();
  std::vector<int32_t> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  const auto larger = [&](int32_t a, int32_t b) {
    const float ma = std::fabs(v[a]), mb = std::fabs(v[b]);
    return ma > mb || (ma == mb && a < b);
  };
  std::nth_element(order.begin(), order.begin() + k, order.end(), larger);
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

void TopKWithErrorFeedback(absl::Span<const float> gradient, absl::Span<float> residual, int64_t k,
                           std::vector<int32_t>& indices, std::vector<float>& values) {
  TRIDENT_CHECK_EQ(gradient.size(), residual.size());
  for (size_t i = 0; i < gradient.size(); ++i) residual[i] = gradient[i] + residual[i];  // v.
  indices = LargestMagnitudes(residual, k);
  values.resize(indices.size());
  for (size_t j = 0; j < indices.size(); ++j) {
    float& v = residual[indices[j]];
    values[j] = v;
    v = std::copysign(0.0f, v);  // x + (+-0 of x's sign) == x, also for x = -0.
  }
}

double MeasuredSparsity(absl::Span<const float> v, double threshold) {
  if (v.empty()) return 0;
  float max_abs = 0.0f;
  for (float x : v) max_abs = std::max(max_abs, std::fabs(x));
  if (max_abs == 0.0f) return 0;
  const double cut = threshold * max_abs;
  int64_t below = 0;
  for (float x : v) below += std::fabs(x) < cut ? 1 : 0;
  return static_cast<double>(below) / static_cast<double>(v.size());
}

int64_t KOfRatio(double ratio, int64_t d) {
  if (d == 0) return 0;
  return std::clamp<int64_t>(static_cast<int64_t>(std::ceil(ratio * static_cast<double>(d))), 1,
                             d);
}

int64_t AdaptiveK::Next(double measured_sparsity, int64_t d) {
  sparsity_ = started_ ? beta_ * sparsity_ + (1 - beta_) * measured_sparsity : measured_sparsity;
  started_ = true;
  const int64_t k = KOfRatio(1 - sparsity_, d);
  return std::clamp(k, KOfRatio(min_ratio_, d), std::max(KOfRatio(min_ratio_, d),
                                                         KOfRatio(max_ratio_, d)));
}

absl::Status SparseAllGatherSum(comm::Communicator& comm, absl::Span<const int32_t> indices,
                                absl::Span<const float> values, absl::Span<float> dense) {
  TRIDENT_CHECK_EQ(indices.size(), values.size());
  const int n = comm.size();
  const size_t k = values.size();
  std::vector<float> all_values(k * n);
  std::vector<int32_t> all_indices(k * n);
  if (absl::Status s = comm.AllGather(comm::MakeConstBuffer(values),
                                      comm::MakeBuffer(absl::MakeSpan(all_values)));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = comm.AllGather(comm::MakeConstBuffer(indices),
                                      comm::MakeBuffer(absl::MakeSpan(all_indices)));
      !s.ok()) {
    return s;
  }
  // -0 is the identity of float addition (-0 + x == x for every x, -0
  // included; +0 + -0 would give +0), so the first rank's values land as they
  // are and the rank-order sum equals a rank-order all-reduce bit for bit.
  std::fill(dense.begin(), dense.end(), -0.0f);
  for (size_t j = 0; j < all_values.size(); ++j) {
    const int32_t index = all_indices[j];
    if (index < 0 || static_cast<size_t>(index) >= dense.size()) {
      return absl::InternalError(absl::StrCat("Top-K all-gather delivered index ", index,
                                              " outside a bucket of ", dense.size()));
    }
    dense[index] += all_values[j];
  }
  return absl::OkStatus();
}

}  // namespace trident::data_parallel
