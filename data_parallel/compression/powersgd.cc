#include "data_parallel/compression/powersgd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"

namespace trident::data_parallel {
namespace {

// A standard normal from a counter (SplitMix64 and Box-Muller), so every rank
// starts from the same Q without talking.
float NormalOf(uint64_t seed, uint64_t counter) {
  const auto mix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  const uint64_t a = mix(seed ^ mix(2 * counter));
  const uint64_t b = mix(seed ^ mix(2 * counter + 1));
  const double u1 = (static_cast<double>(a >> 11) + 1.0) * 0x1.0p-53;  // (0, 1].
  const double u2 = static_cast<double>(b >> 11) * 0x1.0p-53;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

// Orthonormalises the `cols` columns of the row-major rows x cols matrix `p`
// in place (modified Gram-Schmidt). A column that vanishes stays zero.
void Orthonormalize(float* p, int64_t rows, int cols) {
  for (int j = 0; j < cols; ++j) {
    for (int k = 0; k < j; ++k) {
      double dot = 0;
      for (int64_t i = 0; i < rows; ++i) dot += double{p[i * cols + j]} * p[i * cols + k];
      const float projection = static_cast<float>(dot);
      for (int64_t i = 0; i < rows; ++i) p[i * cols + j] -= projection * p[i * cols + k];
    }
    double norm = 0;
    for (int64_t i = 0; i < rows; ++i) norm += double{p[i * cols + j]} * p[i * cols + j];
    norm = std::sqrt(norm);
    if (norm == 0) continue;
    const float inverse = static_cast<float>(1.0 / norm);
    for (int64_t i = 0; i < rows; ++i) p[i * cols + j] *= inverse;
  }
}

absl::Status AllReduce(comm::Communicator& dp, comm::AllReduceAlgorithm algorithm,
                       std::vector<float>& values) {
  return comm::AllReduceByAlgorithmAsync(dp, comm::MakeBuffer(absl::MakeSpan(values)),
                                         comm::ReduceOp::kSum, algorithm)
      ->Wait();
}

}  // namespace

PowerSgdBucket::PowerSgdBucket(int64_t size, std::vector<BucketMatrix> matrices, int rank,
                               int start_step, uint64_t seed)
    : rank_(rank), start_step_(start_step), residual_(size, -0.0f) {
  TRIDENT_CHECK_GE(rank, 1);
  std::vector<bool> in_matrix(size, false);
  for (const BucketMatrix& m : matrices) {
    TRIDENT_CHECK(m.offset >= 0 && m.rows > 0 && m.cols > 0 && m.offset + m.rows * m.cols <= size);
    if (rank * (m.rows + m.cols) >= m.rows * m.cols) continue;  // Nothing to gain.
    for (int64_t i = 0; i < m.rows * m.cols; ++i) in_matrix[m.offset + i] = true;
    std::vector<float> q(m.cols * rank);
    for (int64_t i = 0; i < static_cast<int64_t>(q.size()); ++i) {
      q[i] = NormalOf(seed + compressed_.size(), i);
    }
    q_.push_back(std::move(q));
    compressed_.push_back(m);
  }
  for (int64_t i = 0; i < size; ++i) {
    if (!in_matrix[i]) uncompressed_.push_back(i);
  }
}

absl::Status PowerSgdBucket::Restore(int64_t steps, std::vector<std::vector<float>> q,
                                     std::vector<float> residual) {
  if (steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("PowerSGD steps is ", steps, "; must be >= 0"));
  }
  if (residual.size() != residual_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PowerSGD residual has ", residual.size(),
                                                   " elements; the bucket has ", residual_.size()));
  }
  if (q.size() != q_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("PowerSGD state has ", q.size(),
                                                   " Q matrices; the bucket compresses ",
                                                   q_.size()));
  }
  for (size_t k = 0; k < q.size(); ++k) {
    if (q[k].size() != q_[k].size()) {
      return absl::InvalidArgumentError(absl::StrCat("PowerSGD Q of matrix ", k, " has ",
                                                     q[k].size(), " elements; expected ",
                                                     q_[k].size(), " (cols x rank)"));
    }
  }
  steps_ = steps;
  q_ = std::move(q);
  residual_ = std::move(residual);
  return absl::OkStatus();
}

absl::Status PowerSgdBucket::Sum(comm::Communicator& dp, comm::AllReduceAlgorithm algorithm,
                                 absl::Span<float> gradient) {
  TRIDENT_CHECK_EQ(gradient.size(), residual_.size());
  if (steps_++ < start_step_) {
    return comm::AllReduceByAlgorithmAsync(dp, comm::MakeBuffer(gradient), comm::ReduceOp::kSum,
                                           algorithm)
        ->Wait();
  }
  const int r = rank_;
  // v = g + e, kept in `residual_` until the residual replaces it.
  std::vector<float>& v = residual_;
  for (size_t i = 0; i < v.size(); ++i) v[i] = gradient[i] + v[i];

  // P = M Q for every matrix, one all-reduce.
  std::vector<int64_t> p_offset, q_offset;
  int64_t p_total = 0, q_total = 0;
  for (const BucketMatrix& m : compressed_) {
    p_offset.push_back(p_total);
    q_offset.push_back(q_total);
    p_total += m.rows * r;
    q_total += m.cols * r;
  }
  std::vector<float> p(p_total, 0.0f);
  for (size_t k = 0; k < compressed_.size(); ++k) {
    const BucketMatrix& m = compressed_[k];
    const float* mat = v.data() + m.offset;
    const float* q = q_[k].data();
    float* out = p.data() + p_offset[k];
    for (int64_t i = 0; i < m.rows; ++i) {
      for (int64_t c = 0; c < m.cols; ++c) {
        const float x = mat[i * m.cols + c];
        for (int j = 0; j < r; ++j) out[i * r + j] += x * q[c * r + j];
      }
    }
  }
  if (absl::Status s = AllReduce(dp, algorithm, p); !s.ok()) return s;
  for (size_t k = 0; k < compressed_.size(); ++k) {
    Orthonormalize(p.data() + p_offset[k], compressed_[k].rows, r);
  }

  // Q_r = M^T P^, this rank's; then the residual E = M - P^ Q_r^T. The second
  // all-reduce carries the Q's and the uncompressed elements.
  std::vector<float> second(q_total + uncompressed_.size(), 0.0f);
  last_sent_.assign(v.size(), 0.0f);
  for (size_t k = 0; k < compressed_.size(); ++k) {
    const BucketMatrix& m = compressed_[k];
    const float* mat = v.data() + m.offset;
    const float* ph = p.data() + p_offset[k];
    float* q = second.data() + q_offset[k];
    for (int64_t i = 0; i < m.rows; ++i) {
      for (int64_t c = 0; c < m.cols; ++c) {
        const float x = mat[i * m.cols + c];
        for (int j = 0; j < r; ++j) q[c * r + j] += x * ph[i * r + j];
      }
    }
    for (int64_t i = 0; i < m.rows; ++i) {
      for (int64_t c = 0; c < m.cols; ++c) {
        float s = 0.0f;
        for (int j = 0; j < r; ++j) s += ph[i * r + j] * q[c * r + j];
        last_sent_[m.offset + i * m.cols + c] = s;
      }
    }
  }
  for (size_t u = 0; u < uncompressed_.size(); ++u) {
    second[q_total + u] = v[uncompressed_[u]];
    last_sent_[uncompressed_[u]] = v[uncompressed_[u]];
  }
  // E = v - S: exactly -0-signed zero where everything was sent.
  for (size_t i = 0; i < v.size(); ++i) v[i] = v[i] - last_sent_[i];
  for (int64_t u : uncompressed_) v[u] = -0.0f;
  if (absl::Status s = AllReduce(dp, algorithm, second); !s.ok()) return s;

  // The sum: P^ Q^T for the matrices, the summed elements elsewhere; the
  // summed Q warm-starts the next step.
  for (size_t k = 0; k < compressed_.size(); ++k) {
    const BucketMatrix& m = compressed_[k];
    const float* ph = p.data() + p_offset[k];
    const float* q = second.data() + q_offset[k];
    for (int64_t i = 0; i < m.rows; ++i) {
      for (int64_t c = 0; c < m.cols; ++c) {
        float s = 0.0f;
        for (int j = 0; j < r; ++j) s += ph[i * r + j] * q[c * r + j];
        gradient[m.offset + i * m.cols + c] = s;
      }
    }
    std::copy(q, q + m.cols * r, q_[k].begin());
  }
  for (size_t u = 0; u < uncompressed_.size(); ++u) {
    gradient[uncompressed_[u]] = second[q_total + u];
  }
  return absl::OkStatus();
}

}  // namespace trident::data_parallel
