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

}  // namespace trident::tp
