#include "tensor_parallel/tp_group.h"

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/tensor_comm.h"

namespace trident::tp {

Range ShardRange(int64_t total, int count, int index) {
  TRIDENT_CHECK_EQ(total % count, 0) << "cannot split " << total << " into " << count;
  const int64_t per_shard = total / count;
  return Range{index * per_shard, (index + 1) * per_shard};
}

absl::Status TpGroup::AllReduce(const Tensor& tensor, comm::ReduceOp op) const {
  if (size() == 1) return absl::OkStatus();
  return comm_->AllReduce(AsCommBuffer(tensor), op);
}

absl::Status TpGroup::AllReduceSum(const Tensor& tensor) const {
  return AllReduce(tensor, comm::ReduceOp::kSum);
}

absl::Status TpGroup::AllReduceMax(const Tensor& tensor) const {
  return AllReduce(tensor, comm::ReduceOp::kMax);
}

namespace {

// `full` must hold exactly size() chunks shaped like `local`.
absl::Status CheckRowChunks(const Tensor& local, const Tensor& full, int size, const char* op) {
  if (full.numel() == local.numel() * size && full.dim(0) == local.dim(0) * size) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", full.dim(0), " rows (", full.numel(),
                                                 " elements) are not ", size, " chunks of ",
                                                 local.dim(0), " rows (", local.numel(),
                                                 " elements)"));
}

}  // namespace

absl::Status TpGroup::AllGatherRows(const ExecContext& ctx, const Tensor& local,
                                    const Tensor& full) const {
  if (absl::Status s = CheckRowChunks(local, full, size(), "AllGatherRows"); !s.ok()) return s;
  if (size() == 1) {
    ops::Copy(ctx, local, full);
    return absl::OkStatus();
  }
  return comm_->AllGather(AsConstCommBuffer(local), AsCommBuffer(full));
}

absl::Status TpGroup::ReduceScatterRows(const ExecContext& ctx, const Tensor& full,
                                        const Tensor& local) const {
  if (absl::Status s = CheckRowChunks(local, full, size(), "ReduceScatterRows"); !s.ok()) {
    return s;
  }
  if (size() == 1) {
    ops::Copy(ctx, full, local);
    return absl::OkStatus();
  }
  return comm_->ReduceScatter(AsConstCommBuffer(full), AsCommBuffer(local), comm::ReduceOp::kSum);
}

absl::StatusOr<Tensor> TpGroup::GatherSequence(const ExecContext& ctx, const Tensor& local) const {
  if (!sequence_parallel_) return local;
  Shape shape = local.shape();
  shape[0] *= size();
  Tensor full = Tensor::Empty(shape, local.dtype(), ctx.allocator());
  if (absl::Status s = AllGatherRows(ctx, local, full); !s.ok()) return s;
  return full;
}

Tensor TpGroup::PartialSums(const ExecContext& ctx, const Shape& full_shape,
                            const Tensor& local) const {
  if (!sequence_parallel_) return local;
  return Tensor::Empty(full_shape, local.dtype(), ctx.allocator());
}

absl::Status TpGroup::ReduceToLocal(const ExecContext& ctx, const Tensor& partial,
                                    const Tensor& local) const {
  if (!sequence_parallel_) {
    TRIDENT_CHECK(partial.raw_data() == local.raw_data())
        << "without sequence parallelism the partial sums are reduced in place";
    return AllReduceSum(local);
  }
  // Rows of the activation, whatever its leading dims ([B, T, h] or [N, h]).
  const int64_t cols = local.shape().back();
  return ReduceScatterRows(ctx, partial.Reshape({-1, cols}), local.Reshape({-1, cols}));
}

}  // namespace trident::tp
