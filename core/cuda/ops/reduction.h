#ifndef TRIDENT_CORE_CUDA_OPS_REDUCTION_H_
#define TRIDENT_CORE_CUDA_OPS_REDUCTION_H_

// Whole-tensor reductions on a GPU, returned to the host: the Backend's Sum and
// SumOfSquares (core/ops/reduction.h) and, for the gradient norm, the sum of
// squares of many tensors in one launch.
//
// The CPU twin's contract, kept: accumulation in double over fixed chunks of
// 64 Ki elements, the chunks' partial sums added in a fixed order, so the
// result is deterministic (the same bits on every run; no atomics). Stage 1:
// one block per chunk, each thread summing its elements in order in double,
// then the block's threads combined by a fixed tree (warp shuffles, then the
// warps' sums in order); stage 2: one block adds the chunks' partials the same
// way. The order differs from the CPU's, so the two agree to double rounding
// (n * 2^-53 of sum |x|), not bit for bit.
//
// These are the only functions here that synchronise: each queues its kernels
// on `stream`, copies the one double back and waits for the stream (the
// caller asked for a host value). Stage 1's partials live in a few KiB of
// stream-ordered scratch (cudaMallocAsync / cudaFreeAsync on `stream`).
//
// Inputs: contiguous fp32, bf16 or fp16 (16-bit values are summed exactly as
// their fp32 values). A NaN or Inf anywhere makes the result NaN or Inf, which
// is how the optimizer tells that gradients are not finite.

#include <cuda_runtime.h>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace trident::cuda {

// sum_i x[i].
absl::StatusOr<double> Sum(cudaStream_t stream, const Tensor& x);

// sum_i x[i]^2.
absl::StatusOr<double> SumOfSquares(cudaStream_t stream, const Tensor& x);

// sum over the tensors of sum_i t[i] (a step's loss from its micro-batches'
// token losses): as MultiTensorSumOfSquares, without the square.
absl::StatusOr<double> MultiTensorSum(cudaStream_t stream, absl::Span<const Tensor> tensors);

// sum over the tensors of sum_i t[i]^2 (the squared global gradient norm): one
// launch for every 256 tensors (usually all), any mix of float dtypes and
// sizes (empty tensors add nothing), then one launch adding every partial.
// The order of `tensors` fixes the order of the sum.
absl::StatusOr<double> MultiTensorSumOfSquares(cudaStream_t stream,
                                               absl::Span<const Tensor> tensors);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_REDUCTION_H_
