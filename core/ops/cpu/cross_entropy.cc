// CpuBackendImpl: the softmax cross-entropy family.

#include <cmath>

#include "core/check.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// The local column of target t, or -1 when the row is ignored or the target
// lives in another shard (or in this shard's padding). Aborts on a target
// outside the vocabulary.
inline int64_t TargetColumn(int32_t t, const CrossEntropyOptions& o, const char* op) {
  if (t == o.ignore_index) return -1;
  TRIDENT_CHECK(t >= 0 && t < o.vocab_size)
      << "ops::" << op << ": target " << t << " is outside the vocabulary [0, " << o.vocab_size
      << ") and is not the ignore index " << o.ignore_index;
  const int64_t col = static_cast<int64_t>(t) - o.vocab_start;
  return (col >= 0 && col < o.valid_columns) ? col : -1;
}

// Row-parallel loop over the N rows of logits [N, V].
template <typename Body>
void ForRows(const ExecContext& ctx, int64_t rows, int64_t cols, Body body) {
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) body(r);
  });
}

}  // namespace

void CpuBackendImpl::RowMax(const ExecContext& ctx, const Tensor& logits,
                            const CrossEntropyOptions& options, const Tensor& row_max) const {
  internal::CheckFloat32(ctx, "RowMax", {{"logits", logits}, {"row_max", row_max}});
  const int64_t cols = logits.dim(1);
  const float* pl = logits.data<float>();
  float* pm = row_max.data<float>();
  ForRows(ctx, logits.dim(0), cols,
          [&](int64_t r) { pm[r] = MaxOf(pl + r * cols, options.valid_columns); });
}

void CpuBackendImpl::RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                               const CrossEntropyOptions& options, const Tensor& sum_exp) const {
  internal::CheckFloat32(ctx, "RowSumExp",
                         {{"logits", logits}, {"row_max", row_max}, {"sum_exp", sum_exp}});
  const int64_t cols = logits.dim(1);
  const float* pl = logits.data<float>();
  const float* pm = row_max.data<float>();
  float* ps = sum_exp.data<float>();
  ForRows(ctx, logits.dim(0), cols, [&](int64_t r) {
    ps[r] = static_cast<float>(SumExpShift(pl + r * cols, options.valid_columns, pm[r]));
  });
}

void CpuBackendImpl::TargetLogit(const ExecContext& ctx, const Tensor& logits,
                                 const Tensor& targets, const CrossEntropyOptions& options,
                                 const Tensor& target_logit) const {
  internal::CheckFloat32(ctx, "TargetLogit", {{"logits", logits}, {"target_logit", target_logit}});
  const int64_t cols = logits.dim(1);
  const float* pl = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* po = target_logit.data<float>();
  ForRows(ctx, logits.dim(0), 1, [&](int64_t r) {
    const int64_t col = TargetColumn(pt[r], options, "TargetLogit");
    po[r] = col >= 0 ? pl[r * cols + col] : 0.0f;
  });
}

void CpuBackendImpl::CrossEntropyForward(const ExecContext& ctx, const Tensor& logits,
                                         const Tensor& targets, const CrossEntropyOptions& options,
                                         const Tensor& losses, const Tensor& logsumexp) const {
  internal::CheckFloat32(ctx, "CrossEntropyForward",
                         {{"logits", logits}, {"losses", losses}, {"logsumexp", logsumexp}});
  const int64_t cols = logits.dim(1), valid = options.valid_columns;
  const float* pl = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* ploss = losses.data<float>();
  float* plse = logsumexp.data<float>();
  ForRows(ctx, logits.dim(0), cols, [&](int64_t r) {
    const float* row = pl + r * cols;
    const float m = MaxOf(row, valid);
    const double lse = m + std::log(SumExpShift(row, valid, m));
    plse[r] = static_cast<float>(lse);
    const int64_t col = TargetColumn(pt[r], options, "CrossEntropyForward");
    ploss[r] = col >= 0 ? static_cast<float>(lse - row[col]) : 0.0f;
  });
}

void CpuBackendImpl::CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits,
                                          const Tensor& targets, const Tensor& logsumexp,
                                          float grad_scale, const CrossEntropyOptions& options,
                                          const Tensor& dlogits) const {
  internal::CheckFloat32(ctx, "CrossEntropyBackward",
                         {{"logits", logits}, {"logsumexp", logsumexp}, {"dlogits", dlogits}});
  const int64_t cols = logits.dim(1), valid = options.valid_columns;
  const float* pl = logits.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  const float* plse = logsumexp.data<float>();
  float* pd = dlogits.data<float>();
  ForRows(ctx, logits.dim(0), cols, [&](int64_t r) {
    const float* row = pl + r * cols;
    float* drow = pd + r * cols;
    if (pt[r] == options.ignore_index) {
      std::fill(drow, drow + cols, 0.0f);
      return;
    }
    const int64_t col = TargetColumn(pt[r], options, "CrossEntropyBackward");
    const float lse = plse[r];
    for (int64_t j = 0; j < valid; ++j) drow[j] = grad_scale * FastExp(row[j] - lse);
    std::fill(drow + valid, drow + cols, 0.0f);
    if (col >= 0) drow[col] -= grad_scale;
  });
}

void CpuBackendImpl::CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                              const Tensor& sum_exp, const Tensor& target_logit,
                                              const Tensor& targets, int32_t ignore_index,
                                              const Tensor& losses, const Tensor& logsumexp) const {
  internal::CheckFloat32(ctx, "CombineCrossEntropyParts",
                         {{"row_max", row_max},
                          {"sum_exp", sum_exp},
                          {"target_logit", target_logit},
                          {"losses", losses},
                          {"logsumexp", logsumexp}});
  const float* pm = row_max.data<float>();
  const float* ps = sum_exp.data<float>();
  const float* ptl = target_logit.data<float>();
  const int32_t* pt = targets.data<int32_t>();
  float* ploss = losses.data<float>();
  float* plse = logsumexp.data<float>();
  ForRows(ctx, targets.numel(), 1, [&](int64_t r) {
    const double lse = pm[r] + std::log(static_cast<double>(ps[r]));
    plse[r] = static_cast<float>(lse);
    ploss[r] = pt[r] == ignore_index ? 0.0f : static_cast<float>(lse - ptl[r]);
  });
}

int64_t CpuBackendImpl::CountTargets(const ExecContext& ctx, const Tensor& targets,
                                     int32_t ignore_index) const {
  const int32_t* pt = targets.data<int32_t>();
  int64_t count = 0;
  for (int64_t i = 0; i < targets.numel(); ++i) count += pt[i] != ignore_index;
  return count;
}

}  // namespace trident::ops::cpu
