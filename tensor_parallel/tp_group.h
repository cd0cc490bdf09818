#ifndef TRIDENT_TENSOR_PARALLEL_TP_GROUP_H_
#define TRIDENT_TENSOR_PARALLEL_TP_GROUP_H_

// The tensor-parallel group as the layers see it, and Megatron's communication
// "regions" between replicated and split activations.
//
// The serial model is the group of size 1 (no communicator): every collective
// below is then the identity, so tp = 1 runs the very same layer code
// (DESIGN.md rule 1).
//
//   f = CopyToTpRegion:     forward identity,  backward all-reduce
//   g = ReduceFromTpRegion: forward all-reduce, backward identity
//
// Layers call the all-reduce at the point where f's backward or g's forward
// happens (see tensor_parallel/linear.h), so the regions need no objects of
// their own.

#include "absl/status/status.h"
#include "core/comm/communicator.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::tp {

class TpGroup {
 public:
  // The serial group (size 1).
  TpGroup() = default;
  // `comm` is the rank's tensor-parallel communicator (not owned; may be null for
  // size 1).
  explicit TpGroup(comm::Communicator* comm) : comm_(comm) {}

  int rank() const { return comm_ == nullptr ? 0 : comm_->rank(); }
  int size() const { return comm_ == nullptr ? 1 : comm_->size(); }
  comm::Communicator* communicator() const { return comm_; }

  // Sums `tensor` (contiguous, on the CPU or the communicator's device) over the
  // group, in place. The identity for size 1.
  absl::Status AllReduceSum(const Tensor& tensor) const;
  // Max over the group, in place (vocabulary-parallel softmax).
  absl::Status AllReduceMax(const Tensor& tensor) const;

  // Sequence parallelism's two regions (Korthikanti et al. 2022). Activations
  // [N, ...] are split by rows into size() contiguous chunks of N / size()
  // rows, rank r holding rows [r * N / size(), (r + 1) * N / size()).
  // AllGatherRows: every rank's chunk `local` -> the whole `full` [N, ...].
  absl::Status AllGatherRows(const ExecContext& ctx, const Tensor& local, const Tensor& full) const;
  // ReduceScatterRows: the sum over the group of `full` [N, ...], of which this
  // rank keeps its chunk in `local`. Both are copies at size 1.
  absl::Status ReduceScatterRows(const ExecContext& ctx, const Tensor& full,
                                 const Tensor& local) const;

 private:
  absl::Status AllReduce(const Tensor& tensor, comm::ReduceOp op) const;

  comm::Communicator* comm_ = nullptr;
};

// [begin, end) of `total` items owned by shard `index` of `count` equal shards.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};
Range ShardRange(int64_t total, int count, int index);

}  // namespace trident::tp

#endif  // TRIDENT_TENSOR_PARALLEL_TP_GROUP_H_
