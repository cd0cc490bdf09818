#ifndef TRIDENT_TENSOR_PARALLEL_LINEAR_H_
#define TRIDENT_TENSOR_PARALLEL_LINEAR_H_

// Megatron's tensor-parallel linear layers (Shoeybi et al. 2019), with the
// weight in GPT-2's [in_features, out_features] layout: y = x W + b.
//
// ColumnParallelLinear splits W by output features: rank r holds the columns
// of its shard, takes the whole (replicated) input and produces its slice of
// the output. Its input sits behind f (CopyToTpRegion), so BackwardInput
// all-reduces dx over the group.
//
// RowParallelLinear splits W by input features: rank r holds the rows of its
// shard, takes its slice of the input (the output of a column-parallel layer)
// and produces a partial sum that g (ReduceFromTpRegion) all-reduces; the bias
// is replicated and added once, after the reduction.
//
// When the group runs sequence-parallel (TpGroup::sequence_parallel(),
// Korthikanti et al. 2022) the activations between layers are row chunks
// [N / tp, features] and the layers do the communication themselves:
//   column: Forward all-gathers its input chunk, BackwardInput
//           reduce-scatters dx into a chunk, BackwardWeights all-gathers the
//           input chunk again (Megatron's re-gather: the caller keeps only the
//           chunk, 1 / tp of the input, between forward and backward);
//   row:    Forward reduce-scatters the output into a chunk, BackwardInput
//           all-gathers the output gradient and hands the gathered [N, out]
//           back for BackwardWeights (as Megatron keeps it for the weight
//           gradient: gathering it again would add an all-gather per layer).
// The communication order depends only on the calls, which every tp rank
// makes in the same order (they run the same schedule).
//
// Backward is split (DESIGN.md rule 4): BackwardInput computes dx only,
// BackwardWeights accumulates dW and db (+=) and may run later (zero-bubble
// schedules) or once per micro-batch into the same buffers.

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"

namespace trident::tp {

class ColumnParallelLinear {
 public:
  // The full layer maps `in` to `out` features. `blocks` > 1 when the output is
  // a concatenation of equal blocks that are each split over the group (GPT-2's
  // fused c_attn: Q, K and V; a rank then holds its heads of each).
  // Parameters are named "<name>.weight" and "<name>.bias".
  ColumnParallelLinear(const std::string& name, int64_t in, int64_t out, int blocks,
                       const TpGroup& tp, Device device);

  int64_t in_features() const { return in_; }
  int64_t local_out_features() const { return out_ / tp_.size(); }

  // Weight ~ N(0, std^2) (this rank's slice of the serial model's values), bias 0.
  void Initialize(const ExecContext& ctx, uint64_t seed, float std);

  // y [N, local_out] = x [N, in] W_local + b_local. With sequence parallelism
  // x is this rank's chunk [N / tp, in], all-gathered first.
  absl::Status Forward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const;
  // pre = x W_local + b_local as Forward's y, and y = GELU(pre) (one fused op,
  // ops::LinearForward's kBiasGelu): the MLP's first layer, keeping pre for
  // GeluBackward.
  absl::Status ForwardGelu(const ExecContext& ctx, const Tensor& x, const Tensor& pre,
                           const Tensor& y) const;
  // Megatron's gather_output: the whole output [N, out] on every rank, this
  // rank's slice all-gathered and put back in the serial column order (block by
  // block). For heads whose consumer needs every feature; the GPT never does.
  absl::StatusOr<Tensor> ForwardGatherOutput(const ExecContext& ctx, const Tensor& x) const;
  // dx = dy [N, local_out] W_local^T summed over the group (f's backward): dx
  // is shaped like Forward's x, all-reduced [N, in] or, with sequence
  // parallelism, this rank's reduce-scattered chunk [N / tp, in].
  absl::Status BackwardInput(const ExecContext& ctx, const Tensor& dy, const Tensor& dx) const;
  // dW += x^T dy, db += column sums of dy. `x` is what Forward took (with
  // sequence parallelism the chunk, all-gathered again here).
  absl::Status BackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& dy);

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }

 private:
  int64_t in_;
  int64_t out_;
  int blocks_;
  TpGroup tp_;
  Parameter weight_;
  Parameter bias_;
};

class RowParallelLinear {
 public:
  // The full layer maps `in` to `out` features; this rank holds in / tp rows.
  RowParallelLinear(const std::string& name, int64_t in, int64_t out, const TpGroup& tp,
                    Device device);

  int64_t local_in_features() const { return in_ / tp_.size(); }
  int64_t out_features() const { return out_; }

  void Initialize(const ExecContext& ctx, uint64_t seed, float std);

  // y [N, out] = all-reduce(x_local [N, in/tp] W_local) + b (g's forward).
  // With sequence parallelism y is this rank's chunk [N / tp, out] of the
  // reduce-scatter instead, + b.
  absl::Status Forward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const;
  // dx_local [N, in/tp] = dy W_local^T (g's backward is the identity). `dy` is
  // shaped like Forward's y; with sequence parallelism it is all-gathered to
  // [N, out] first. Returns the output gradient BackwardWeights takes: dy
  // itself, or that gathered [N, out] (so the bias gradient is whole).
  absl::StatusOr<Tensor> BackwardInput(const ExecContext& ctx, const Tensor& dy,
                                       const Tensor& dx) const;
  // dW += x_local^T dy, db += column sums of dy (the same on every rank); dy
  // as BackwardInput returned it.
  void BackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& dy);

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }

 private:
  int64_t in_;
  int64_t out_;
  TpGroup tp_;
  Parameter weight_;
  Parameter bias_;
};

// A parameter with zeroed value and gradient of `shape` on `device`.
Parameter MakeParameter(const std::string& name, absl::Span<const int64_t> shape,
                        bool weight_decay, ShardLayout layout, Device device);

}  // namespace trident::tp

#endif  // TRIDENT_TENSOR_PARALLEL_LINEAR_H_
