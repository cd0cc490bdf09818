#ifndef TRIDENT_TENSOR_PARALLEL_GATHER_H_
#define TRIDENT_TENSOR_PARALLEL_GATHER_H_

// Reassembles the serial model's tensor from its tensor-parallel shards, using
// the parameter's ShardLayout (core/parameter.h). For exports, checkpoints that
// must not depend on the layout, and the tests that compare every tp degree
// with the serial run.

#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"

namespace trident::tp {

// The full tensor of `layout.global_shape` from every rank's `shard` (collective
// over the group: every member calls it). A replicated tensor is copied as is.
absl::StatusOr<Tensor> GatherShards(const ExecContext& ctx, const Tensor& shard,
                                    const ShardLayout& layout, const TpGroup& tp);

}  // namespace trident::tp

#endif  // TRIDENT_TENSOR_PARALLEL_GATHER_H_
