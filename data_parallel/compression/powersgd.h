#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_POWERSGD_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_POWERSGD_H_

// PowerSGD (Vogels, Karimireddy and Jaggi 2019; PyTorch DDP's powerSGD_hook):
// each 2-D gradient matrix M (rows x cols, with this rank's error feedback
// added: M = G + E) is replaced by a rank-r approximation from one step of
// subspace iteration, warm-started from the previous step's Q:
//
//   P = M Q            (rows x r)   all-reduced (summed over ranks)
//   P^ = orthonormal columns of P (modified Gram-Schmidt, the same on every
//        rank since P is)
//   Q_r = M^T P^       (cols x r)   this rank's; E = M - P^ Q_r^T stays here
//   Q = sum_r Q_r                   all-reduced, and kept for the next step
//   sum of the ranks' gradients ~ P^ Q^T
//
// A bucket's P's travel in one all-reduce and its Q's together with every
// element left uncompressed (1-D tensors, and matrices where r (rows + cols)
// is not below rows * cols) in a second one: per step 4 (r sum(rows + cols) +
// uncompressed) bytes of all-reduce payload instead of 4 d. Before
// `start_step` (counted per bucket) buckets are summed uncompressed, without
// error feedback, as PyTorch's start_powerSGD_iter.
//
// Error feedback: E = fl(M - S) with S = P^ Q_r^T, so S + E equals M up to
// the rounding of that one subtraction, |M - (S + E)| <= 2^-24 |E| per element
// (unlike Top-K's and int8's, this residual is not exact: S is a product, not
// a selection or a rounding of M).

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"

namespace trident::data_parallel {

// A 2-D parameter's gradient inside a flat bucket, row-major.
struct BucketMatrix {
  int64_t offset = 0;
  int64_t rows = 0;
  int64_t cols = 0;
};

// One bucket's PowerSGD state: its matrices, their warm-start Q's, the error
// feedback and the step count.
class PowerSgdBucket {
 public:
  // `matrices` lie inside a bucket of `size` elements without overlapping.
  PowerSgdBucket(int64_t size, std::vector<BucketMatrix> matrices, int rank, int start_step,
                 uint64_t seed);

  // Sums `gradient` (the bucket) over `dp` in place, by `algorithm` for the
  // all-reduces.
  absl::Status Sum(comm::Communicator& dp, comm::AllReduceAlgorithm algorithm,
                   absl::Span<float> gradient);

  // The matrices compressed (r (rows + cols) < rows cols), and the number of
  // elements sent uncompressed.
  const std::vector<BucketMatrix>& compressed() const { return compressed_; }
  int64_t uncompressed_elements() const { return uncompressed_.size(); }
  absl::Span<const float> residual() const { return residual_; }
  // This rank's contribution S of the latest compressed step (for the error
  // feedback test), dense over the bucket (uncompressed elements: v itself).
  absl::Span<const float> last_sent() const { return last_sent_; }

  // What carries over from one step to the next (checkpoints): the sums taken
  // so far (compressed or not), the warm-start Q of every compressed matrix
  // (cols x rank, in compressed() order) and the residual E.
  int64_t steps() const { return steps_; }
  const std::vector<std::vector<float>>& q() const { return q_; }
  // Replaces that state by a saved one. INVALID_ARGUMENT, naming the part and
  // both sizes, when the shapes are not this bucket's (then nothing changes).
  absl::Status Restore(int64_t steps, std::vector<std::vector<float>> q,
                       std::vector<float> residual);

 private:
  int rank_;
  int start_step_;
  int64_t steps_ = 0;
  std::vector<BucketMatrix> compressed_;
  std::vector<int64_t> uncompressed_;  // Element indices.
  std::vector<std::vector<float>> q_;  // Per compressed matrix, cols x rank.
  std::vector<float> residual_;
  std::vector<float> last_sent_;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_POWERSGD_H_
