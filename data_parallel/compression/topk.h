#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_TOPK_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_TOPK_H_

// Top-K sparsification with error feedback (Stich et al. 2018; Lin et al.
// 2018, Deep Gradient Compression): each rank adds its residual (what it did
// not send before) to the new gradient, v = g + r, sends the K entries of v
// with the largest magnitudes as (value, index) pairs, and keeps the rest as
// the new residual. The pairs of every rank are all-gathered and summed, in
// rank order, into a dense buffer: every replica ends with the same sum.
//
// K is fixed, ceil(ratio * d) for a bucket of d elements, or adaptive: the
// measured sparsity of v is the fraction of its elements whose magnitude is
// below `threshold` times its largest magnitude, averaged over the ranks (a
// one-float all-reduce, so that every rank picks the same K); its moving
// average s_t = beta s_(t-1) + (1 - beta) s_measured (s_0 = the first
// measurement) sets K_t = ceil((1 - s_t) d), clamped to
// [ceil(min_ratio d), ceil(max_ratio d)].

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"

namespace trident::data_parallel {

// The indices of the k entries of `v` with the largest magnitudes (ties: the
// lower index first), in increasing order. 0 <= k <= v.size(); v finite.
std::vector<int32_t> LargestMagnitudes(absl::Span<const float> v, int64_t k);

// Error feedback step: v = gradient + residual; picks LargestMagnitudes(v, k)
// into `indices` and their values into `values`; residual = v with the picked
// entries replaced by zeros of their sign, so that (values scattered at
// indices) + residual == v bit for bit.
void TopKWithErrorFeedback(absl::Span<const float> gradient, absl::Span<float> residual, int64_t k,
                           std::vector<int32_t>& indices, std::vector<float>& values);

// The fraction of `v`'s elements whose magnitude is below threshold * max|v|
// (0 for an all-zero v).
double MeasuredSparsity(absl::Span<const float> v, double threshold);

// One rank's adaptive-K state for one bucket.
class AdaptiveK {
 public:
  AdaptiveK(double min_ratio, double max_ratio, double beta)
      : min_ratio_(min_ratio), max_ratio_(max_ratio), beta_(beta) {}
  // Folds in this step's measured sparsity (the same on every rank) and
  // returns K for a bucket of `d` elements.
  int64_t Next(double measured_sparsity, int64_t d);
  double sparsity() const { return sparsity_; }
  // Whether a measurement was folded in (the first one sets the average).
  bool started() const { return started_; }
  // Continues from a saved average (checkpoints), as if measurements had
  // been folded in.
  void Restore(double sparsity) {
    sparsity_ = sparsity;
    started_ = true;
  }

 private:
  double min_ratio_, max_ratio_, beta_;
  double sparsity_ = 0;
  bool started_ = false;
};

// ceil(ratio * d), at least 1 when d > 0, at most d.
int64_t KOfRatio(double ratio, int64_t d);

// Sums every rank's (indices, values) over `comm` into `dense` (cleared first),
// in rank order: one all-gather of the values and one of the indices, each of
// k entries per rank (k must agree on every rank).
absl::Status SparseAllGatherSum(comm::Communicator& comm, absl::Span<const int32_t> indices,
                                absl::Span<const float> values, absl::Span<float> dense);

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_TOPK_H_
