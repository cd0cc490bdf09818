#include "tensor_parallel/tp_group.h"

#include "core/check.h"
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

}  // namespace trident::tp
