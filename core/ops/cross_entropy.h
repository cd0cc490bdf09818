#ifndef TRIDENT_CORE_OPS_CROSS_ENTROPY_H_
#define TRIDENT_CORE_OPS_CROSS_ENTROPY_H_

// Softmax cross-entropy over logits [N, V] (one row per token) with int32
// targets [N]; options in CrossEntropyOptions (core/ops/types.h): ignore index,
// vocabulary shard offset, padding columns.
//
// Per-row outputs (losses, logsumexp, row_max, sum_exp, target_logit) are fp32
// with N elements, overwritten. All tensors contiguous.
//
// Mean over tokens: the loss of a batch is Sum(losses) / CountTargets(targets),
// and the backward takes grad_scale = 1 / (that count). A batch split into
// micro-batches sums losses and counts over the whole batch before dividing,
// so every layout computes the serial mean.
//
// Vocabulary parallelism (logits split by columns over the tp group, never
// gathered) composes the building blocks with three all-reduces:
//   RowMax(shard) -> all-reduce max -> m
//   RowSumExp(shard, m) -> all-reduce sum -> s
//   TargetLogit(shard) (0 unless the target is in this shard) -> all-reduce sum -> t
//   CombineCrossEntropyParts(m, s, t) -> losses, logsumexp
//   CrossEntropyBackward(shard, targets, logsumexp, ...) -> this shard's dlogits
// with options.vocab_start = the shard's first global id, options.vocab_size =
// the global vocabulary, options.valid_columns masking padded columns.

#include <cstdint>

#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

// losses[i] = logsumexp_i - logits[i, target_i] (0 for ignored rows);
// logsumexp[i] = log sum_j exp(logits[i, j]) over the valid columns, saved for
// the backward. The logits must hold the whole vocabulary (no shard offset).
void CrossEntropyForward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                         const CrossEntropyOptions& options, const Tensor& losses,
                         const Tensor& logsumexp);

// dlogits[i, j] = grad_scale * (exp(logits[i, j] - logsumexp[i]) - [j is target_i])
// for non-ignored rows and valid columns; 0 elsewhere. Overwrites dlogits, which
// may be logits itself (in place, saving an [N, V] buffer).
void CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                          const Tensor& logsumexp, float grad_scale,
                          const CrossEntropyOptions& options, const Tensor& dlogits);

// The number of targets not equal to ignore_index (synchronises on a GPU).
int64_t CountTargets(const ExecContext& ctx, const Tensor& targets, int32_t ignore_index);

// Building blocks (see above). row_max[i] = max over valid columns.
void RowMax(const ExecContext& ctx, const Tensor& logits, const CrossEntropyOptions& options,
            const Tensor& row_max);
// sum_exp[i] = sum over valid columns of exp(logits[i, j] - row_max[i]).
void RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
               const CrossEntropyOptions& options, const Tensor& sum_exp);
// target_logit[i] = logits[i, target_i - vocab_start] when that column is in this
// shard's valid range, else 0 (also 0 for ignored rows).
void TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                 const CrossEntropyOptions& options, const Tensor& target_logit);
// logsumexp = row_max + log(sum_exp); losses = logsumexp - target_logit, 0 for
// ignored rows.
void CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max, const Tensor& sum_exp,
                              const Tensor& target_logit, const Tensor& targets,
                              int32_t ignore_index, const Tensor& losses, const Tensor& logsumexp);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_CROSS_ENTROPY_H_
