#include "core/ops/cross_entropy.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckContiguous;

// Checks logits [N, V] and the options; returns the options with -1 fields
// resolved (valid_columns, vocab_size).
CrossEntropyOptions CheckLogits(const ExecContext& ctx, const char* op, const Tensor& logits,
                                const CrossEntropyOptions& options) {
  CheckContiguous(ctx, op, "logits", logits);
  internal::CheckNdim(op, "logits", logits, 2);
  CrossEntropyOptions resolved = options;
  if (resolved.valid_columns < 0) resolved.valid_columns = logits.dim(1);
  if (resolved.vocab_size < 0) resolved.vocab_size = resolved.vocab_start + resolved.valid_columns;
  TRIDENT_CHECK(resolved.valid_columns <= logits.dim(1))
      << "ops::" << op << ": valid_columns " << resolved.valid_columns << " exceeds the "
      << logits.dim(1) << " columns of logits";
  TRIDENT_CHECK(resolved.vocab_start >= 0 &&
                resolved.vocab_start + resolved.valid_columns <= resolved.vocab_size)
      << "ops::" << op << ": shard [" << resolved.vocab_start << ", "
      << resolved.vocab_start + resolved.valid_columns << ") exceeds vocab_size "
      << resolved.vocab_size;
  return resolved;
}

void CheckRowVector(const ExecContext& ctx, const char* op, const char* name, const Tensor& t,
                    int64_t rows) {
  CheckContiguous(ctx, op, name, t);
  internal::CheckNumel(op, name, t, rows);
}

void CheckTargets(const ExecContext& ctx, const char* op, const Tensor& targets, int64_t rows) {
  CheckRowVector(ctx, op, "targets", targets, rows);
  internal::CheckDType(op, "targets", targets, DType::kInt32);
}

}  // namespace

void CrossEntropyForward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                         const CrossEntropyOptions& options, const Tensor& losses,
                         const Tensor& logsumexp) {
  const CrossEntropyOptions o = CheckLogits(ctx, "CrossEntropyForward", logits, options);
  TRIDENT_CHECK(o.vocab_start == 0 && o.vocab_size == o.valid_columns)
      << "ops::CrossEntropyForward needs logits over the whole vocabulary (vocab_start "
      << o.vocab_start << ", " << o.valid_columns << " valid columns of vocab_size " << o.vocab_size
      << "): compose the building blocks for a vocabulary shard";
  TRIDENT_CHECK_GT(o.valid_columns, 0) << "ops::CrossEntropyForward: no valid columns";
  const int64_t n = logits.dim(0);
  CheckTargets(ctx, "CrossEntropyForward", targets, n);
  CheckRowVector(ctx, "CrossEntropyForward", "losses", losses, n);
  CheckRowVector(ctx, "CrossEntropyForward", "logsumexp", logsumexp, n);
  BackendFor(ctx).CrossEntropyForward(ctx, logits, targets, o, losses, logsumexp);
}

void CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                          const Tensor& logsumexp, float grad_scale,
                          const CrossEntropyOptions& options, const Tensor& dlogits) {
  const CrossEntropyOptions o = CheckLogits(ctx, "CrossEntropyBackward", logits, options);
  const int64_t n = logits.dim(0);
  CheckTargets(ctx, "CrossEntropyBackward", targets, n);
  CheckRowVector(ctx, "CrossEntropyBackward", "logsumexp", logsumexp, n);
  CheckContiguous(ctx, "CrossEntropyBackward", "dlogits", dlogits);
  internal::CheckSameShape("CrossEntropyBackward", "dlogits", dlogits, "logits", logits);
  BackendFor(ctx).CrossEntropyBackward(ctx, logits, targets, logsumexp, grad_scale, o, dlogits);
}

int64_t CountTargets(const ExecContext& ctx, const Tensor& targets, int32_t ignore_index) {
  CheckTargets(ctx, "CountTargets", targets, targets.numel());
  return BackendFor(ctx).CountTargets(ctx, targets, ignore_index);
}

void RowMax(const ExecContext& ctx, const Tensor& logits, const CrossEntropyOptions& options,
            const Tensor& row_max) {
  const CrossEntropyOptions o = CheckLogits(ctx, "RowMax", logits, options);
  TRIDENT_CHECK_GT(o.valid_columns, 0) << "ops::RowMax: no valid columns";
  CheckRowVector(ctx, "RowMax", "row_max", row_max, logits.dim(0));
  BackendFor(ctx).RowMax(ctx, logits, o, row_max);
}

void RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
               const CrossEntropyOptions& options, const Tensor& sum_exp) {
  const CrossEntropyOptions o = CheckLogits(ctx, "RowSumExp", logits, options);
  CheckRowVector(ctx, "RowSumExp", "row_max", row_max, logits.dim(0));
  CheckRowVector(ctx, "RowSumExp", "sum_exp", sum_exp, logits.dim(0));
  BackendFor(ctx).RowSumExp(ctx, logits, row_max, o, sum_exp);
}

void TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                 const CrossEntropyOptions& options, const Tensor& target_logit) {
  const CrossEntropyOptions o = CheckLogits(ctx, "TargetLogit", logits, options);
  CheckTargets(ctx, "TargetLogit", targets, logits.dim(0));
  CheckRowVector(ctx, "TargetLogit", "target_logit", target_logit, logits.dim(0));
  BackendFor(ctx).TargetLogit(ctx, logits, targets, o, target_logit);
}

void CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max, const Tensor& sum_exp,
                              const Tensor& target_logit, const Tensor& targets,
                              int32_t ignore_index, const Tensor& losses, const Tensor& logsumexp) {
  const int64_t n = targets.numel();
  CheckTargets(ctx, "CombineCrossEntropyParts", targets, n);
  CheckRowVector(ctx, "CombineCrossEntropyParts", "row_max", row_max, n);
  CheckRowVector(ctx, "CombineCrossEntropyParts", "sum_exp", sum_exp, n);
  CheckRowVector(ctx, "CombineCrossEntropyParts", "target_logit", target_logit, n);
  CheckRowVector(ctx, "CombineCrossEntropyParts", "losses", losses, n);
  CheckRowVector(ctx, "CombineCrossEntropyParts", "logsumexp", logsumexp, n);
  BackendFor(ctx).CombineCrossEntropyParts(ctx, row_max, sum_exp, target_logit, targets,
                                           ignore_index, losses, logsumexp);
}

}  // namespace trident::ops
