#ifndef TRIDENT_CORE_OPS_REDUCTION_H_
#define TRIDENT_CORE_OPS_REDUCTION_H_

// Whole-tensor reductions returned to the host (on a GPU they synchronise the
// stream: call them once per step, e.g. for the loss and the gradient norm).
//
// Both accumulate in double over fixed blocks of 64 Ki elements whose partial
// sums are added in block order, so the result is deterministic and the same for
// any thread count. Inputs are contiguous fp32.

#include "absl/types/span.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

// sum_i x[i].
double Sum(const ExecContext& ctx, const Tensor& x);

// sum_i x[i]^2 (the squared L2 norm; see GlobalL2Norm in optimizer.h).
double SumOfSquares(const ExecContext& ctx, const Tensor& x);

// sum over `tensors` of Sum(t): a step's loss from its micro-batches' token
// losses with one read-back. Each tensor summed as Sum does, the tensors' sums
// added in the order given (on the CPU: the same bits as a loop over Sum).
double MultiTensorSum(const ExecContext& ctx, absl::Span<const Tensor> tensors);

// sum over `tensors` of SumOfSquares(t): the squared global norm of many
// tensors (the gradient norm) with one read-back instead of one per tensor.
// Each tensor's sum is blocked as in SumOfSquares and the tensors' sums are
// added in the order given, so on the CPU the result has the same bits as
// summing SumOfSquares over the tensors in a loop. An empty span gives 0.
double MultiTensorSumOfSquares(const ExecContext& ctx, absl::Span<const Tensor> tensors);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_REDUCTION_H_
