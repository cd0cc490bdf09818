#ifndef TRIDENT_CORE_CUDA_OPS_CROSS_ENTROPY_H_
#define TRIDENT_CORE_CUDA_OPS_CROSS_ENTROPY_H_

// Softmax cross-entropy on the GPU: the Backend methods of
// core/ops/cross_entropy.h (same names, same argument order, a stream in place
// of the ExecContext), with the semantics documented there and in
// core/ops/cpu/cross_entropy.cc, every CrossEntropyOptions field honoured:
// ignore_index rows (zero loss, zero gradient), vocab_start (the shard's first
// global id), valid_columns (padding columns excluded from the softmax, zero
// gradient) and vocab_size (the range targets must lie in). Options fields at
// -1 are resolved as the public ops resolve them.
//
// Storage: logits and dlogits share one float dtype (fp32, bf16 or fp16);
// targets are int32; the per-row tensors (losses, logsumexp, row_max, sum_exp,
// target_logit) are fp32. Compute is fp32 (the per-row log and the loss
// subtraction in double, as on the CPU). Every tensor contiguous and on one
// CUDA device.
//
// Each function validates its arguments on the host (INVALID_ARGUMENT naming
// the op, the argument or the options field) and queues its kernel on `stream`
// without synchronising, except CountTargets, which must return a host value
// and synchronises `stream`. A target outside [0, vocab_size) that is not
// ignore_index makes the kernel print it and trap (the CPU twin aborts): the
// next synchronising call reports the error.
//
// Row kernels run one block per row (16-byte packs when the row width and the
// pointers allow). The forward is fused: one pass over the row with an online
// max and sum of exponentials; the backward is fused too: softmax minus the
// one-hot target, times grad_scale, in one pass (dlogits may be logits).

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::cuda {

// row_max[i] = max over the valid columns of logits [N, V].
absl::Status RowMax(cudaStream_t stream, const Tensor& logits,
                    const ops::CrossEntropyOptions& options, const Tensor& row_max);

// sum_exp[i] = sum over the valid columns of exp(logits[i, j] - row_max[i]).
absl::Status RowSumExp(cudaStream_t stream, const Tensor& logits, const Tensor& row_max,
                       const ops::CrossEntropyOptions& options, const Tensor& sum_exp);

// target_logit[i] = logits[i, target_i - vocab_start] when that column is in
// this shard's valid range, else 0 (also 0 for ignored rows).
absl::Status TargetLogit(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                         const ops::CrossEntropyOptions& options, const Tensor& target_logit);

// losses[i] = logsumexp[i] - logits[i, target_i] (0 for ignored rows), over
// logits holding the whole vocabulary (vocab_start 0, vocab_size = valid columns).
absl::Status CrossEntropyForward(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                                 const ops::CrossEntropyOptions& options, const Tensor& losses,
                                 const Tensor& logsumexp);

// dlogits[i, j] = grad_scale * (exp(logits[i, j] - logsumexp[i]) - [j is target_i])
// on valid columns of non-ignored rows, 0 elsewhere; dlogits may be logits.
absl::Status CrossEntropyBackward(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                                  const Tensor& logsumexp, float grad_scale,
                                  const ops::CrossEntropyOptions& options, const Tensor& dlogits);

// logsumexp = row_max + log(sum_exp); losses = logsumexp - target_logit, 0 for
// ignored rows.
absl::Status CombineCrossEntropyParts(cudaStream_t stream, const Tensor& row_max,
                                      const Tensor& sum_exp, const Tensor& target_logit,
                                      const Tensor& targets, int32_t ignore_index,
                                      const Tensor& losses, const Tensor& logsumexp);

// The number of targets not equal to ignore_index. Synchronises `stream` (the
// count is read back to the host).
absl::StatusOr<int64_t> CountTargets(cudaStream_t stream, const Tensor& targets,
                                     int32_t ignore_index);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_CROSS_ENTROPY_H_
