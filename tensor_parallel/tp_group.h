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
// their own. With sequence parallelism the layers call the all-gather /
// reduce-scatter pairs below instead.

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::tp {

class TpGroup {
 public:
  // The serial group (size 1).
  TpGroup() = default;
  // `comm` is the rank's tensor-parallel communicator (not owned; may be null for
  // size 1). With `sequence_parallel` the activations between the group's
  // layers are row chunks (see below), and every layer built on the group
  // gathers and scatters them itself.
  //
  // Sequence parallelism is a property of the group, not an argument of each
  // layer: it is the layout of the activations that the group's layers hand
  // to one another, so all of them must agree on it (a column-parallel layer
  // that gathers its input needs the row-parallel layer before it to have
  // scattered its output). One flag on the group they share makes a mix
  // impossible; per-layer flags would let it compile and then hang or fail on
  // shapes.
  explicit TpGroup(comm::Communicator* comm, bool sequence_parallel = false)
      : comm_(comm), sequence_parallel_(sequence_parallel) {}

  int rank() const { return comm_ == nullptr ? 0 : comm_->rank(); }
  int size() const { return comm_ == nullptr ? 1 : comm_->size(); }
  comm::Communicator* communicator() const { return comm_; }
  // Whether activations between the group's layers are row chunks [N / size(),
  // ...] rather than replicated [N, ...].
  bool sequence_parallel() const { return sequence_parallel_; }
  // The rows one rank holds of an activation of `rows` rows: rows / size()
  // with sequence parallelism, all of them otherwise.
  int64_t LocalRows(int64_t rows) const { return sequence_parallel_ ? rows / size() : rows; }

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

  // The two halves of every layer's communication, in whichever form the
  // group runs, so that a layer has one code path for both:
  //
  // The whole activation [N, ...] from this rank's `local` one: with sequence
  // parallelism its chunk all-gathered into a new tensor (allocated from
  // ctx); otherwise `local` itself, which is whole already.
  absl::StatusOr<Tensor> GatherSequence(const ExecContext& ctx, const Tensor& local) const;
  // Where a layer writes partial sums over the group that ReduceToLocal then
  // reduces into `local`: `local` itself without sequence parallelism (it is
  // all-reduced in place), else a new tensor of `full_shape` [N, ...].
  Tensor PartialSums(const ExecContext& ctx, const Shape& full_shape, const Tensor& local) const;
  // Sums `partial` (from PartialSums(..., local)) over the group into `local`:
  // all-reduce, or with sequence parallelism reduce-scatter of its rows.
  absl::Status ReduceToLocal(const ExecContext& ctx, const Tensor& partial,
                             const Tensor& local) const;

 private:
  absl::Status AllReduce(const Tensor& tensor, comm::ReduceOp op) const;

  comm::Communicator* comm_ = nullptr;
  bool sequence_parallel_ = false;
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
