#include "tensor_parallel/gather.h"

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/tensor_comm.h"

namespace trident::tp {

absl::StatusOr<Tensor> GatherShards(const ExecContext& ctx, const Tensor& shard,
                                    const ShardLayout& layout, const TpGroup& tp) {
  if (layout.replicated()) return ops::Clone(ctx, shard);
  if (layout.num_shards != tp.size()) {
    return absl::InvalidArgumentError(absl::StrCat("a tensor split into ", layout.num_shards,
                                                   " shards cannot be gathered over a group of ",
                                                   tp.size()));
  }
  const int dim = layout.split_dim;
  const int64_t global_extent = layout.global_shape[dim];
  const int64_t local_extent = global_extent / tp.size();
  TRIDENT_CHECK_EQ(shard.dim(dim), local_extent) << shard.DebugString();

  // Every rank's shard, stacked: [tp, ...shard shape].
  Shape stacked_shape = {tp.size()};
  stacked_shape.insert(stacked_shape.end(), shard.shape().begin(), shard.shape().end());
  Tensor stacked = Tensor::Empty(stacked_shape, shard.dtype(), ctx.allocator());
  const Tensor local = ops::Contiguous(ctx, shard);
  if (tp.size() == 1) {
    ops::Copy(ctx, local, stacked.Select(0, 0));
  } else {
    if (absl::Status s = tp.communicator()->AllGather(AsCommBuffer(local), AsCommBuffer(stacked));
        !s.ok()) {
      return s;
    }
  }

  // Shard s holds, for each block j, the global range
  // [j * block + s * local_block, ... + local_block) of the split dim.
  Tensor full = Tensor::Empty(layout.global_shape, shard.dtype(), ctx.allocator());
  const int64_t block = global_extent / layout.blocks;
  const int64_t local_block = local_extent / layout.blocks;
  for (int s = 0; s < tp.size(); ++s) {
    const Tensor piece = stacked.Select(0, s);
    for (int j = 0; j < layout.blocks; ++j) {
      ops::Copy(ctx, piece.Slice(dim, j * local_block, local_block),
                full.Slice(dim, j * block + s * local_block, local_block));
    }
  }
  return full;
}

}  // namespace trident::tp
