#include "tensor_parallel/linear.h"

#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/ops/gemm.h"
#include "core/ops/linear.h"
#include "core/random.h"
#include "core/status_macros.h"
#include "tensor_parallel/gather.h"

namespace trident::tp {

using ops::Trans;

Parameter MakeParameter(const std::string& name, absl::Span<const int64_t> shape,
                        bool weight_decay, ShardLayout layout, Device device) {
  Parameter p;
  p.name = name;
  p.value = Tensor::Zeros(shape, DType::kFloat32, device);
  p.grad = Tensor::Zeros(shape, DType::kFloat32, device);
  p.weight_decay = weight_decay;
  p.layout = std::move(layout);
  return p;
}

namespace {

ShardLayout SplitLayout(Shape global_shape, int split_dim, const TpGroup& tp, int blocks) {
  ShardLayout layout;
  layout.global_shape = std::move(global_shape);
  layout.split_dim = split_dim;
  layout.num_shards = tp.size();
  layout.shard_index = tp.rank();
  layout.blocks = blocks;
  return layout;
}

ShardLayout Replicated(Shape global_shape) {
  ShardLayout layout;
  layout.global_shape = std::move(global_shape);
  return layout;
}

}  // namespace

ColumnParallelLinear::ColumnParallelLinear(const std::string& name, int64_t in, int64_t out,
                                           int blocks, const TpGroup& tp, Device device)
    : in_(in), out_(out), blocks_(blocks), tp_(tp) {
  TRIDENT_CHECK_EQ(out % (static_cast<int64_t>(blocks) * tp.size()), 0)
      << name << ": " << out << " output features in " << blocks << " blocks over tp "
      << tp.size();
  const int64_t local_out = out / tp.size();
  weight_ = MakeParameter(name + ".weight", {in, local_out}, /*weight_decay=*/true,
                          SplitLayout({in, out}, 1, tp, blocks), device);
  bias_ = MakeParameter(name + ".bias", {local_out}, /*weight_decay=*/false,
                        SplitLayout({out}, 0, tp, blocks), device);
}

void ColumnParallelLinear::Initialize(const ExecContext& ctx, uint64_t seed, float std) {
  // Each block of the full output is split separately: this rank's piece of
  // block j is the global column range [j * block + r * local_block, ...).
  const int64_t block = out_ / blocks_;
  const int64_t local_block = block / tp_.size();
  for (int j = 0; j < blocks_; ++j) {
    MatrixShard shard{in_, out_, 0, j * block + tp_.rank() * local_block};
    FillNormal(ctx, weight_.value.Slice(1, j * local_block, local_block), seed, weight_.name,
               std, shard);
  }
  ops::Fill(ctx, bias_.value, 0.0f);
}

absl::Status ColumnParallelLinear::Forward(const ExecContext& ctx, const Tensor& x,
                                           const Tensor& y) const {
  ASSIGN_OR_RETURN(const Tensor input, tp_.GatherSequence(ctx, x));
  ops::LinearForward(ctx, input, weight_.value, bias_.value, ops::LinearEpilogue::kBias, y);
  return absl::OkStatus();
}

absl::Status ColumnParallelLinear::ForwardGelu(const ExecContext& ctx, const Tensor& x,
                                               const Tensor& pre, const Tensor& y) const {
  ASSIGN_OR_RETURN(const Tensor input, tp_.GatherSequence(ctx, x));
  ops::LinearForward(ctx, input, weight_.value, bias_.value, ops::LinearEpilogue::kBiasGelu, y,
                     pre);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> ColumnParallelLinear::ForwardGatherOutput(const ExecContext& ctx,
                                                                 const Tensor& x) const {
  const int64_t rows = x.dim(0) * (tp_.sequence_parallel() ? tp_.size() : 1);
  Tensor local = Tensor::Empty({rows, local_out_features()}, x.dtype(), ctx.allocator());
  RETURN_IF_ERROR(Forward(ctx, x, local));
  ShardLayout layout = weight_.layout;  // Split like the weight's columns.
  layout.global_shape = {rows, out_};
  return GatherShards(ctx, local, layout, tp_);
}

absl::Status ColumnParallelLinear::BackwardInput(const ExecContext& ctx, const Tensor& dy,
                                                 const Tensor& dx) const {
  const Tensor partial = tp_.PartialSums(ctx, {dy.dim(0), in_}, dx);
  ops::Gemm(ctx, dy, Trans::kNo, weight_.value, Trans::kYes, partial);
  return tp_.ReduceToLocal(ctx, partial, dx);
}

absl::Status ColumnParallelLinear::BackwardWeights(const ExecContext& ctx, const Tensor& x,
                                                   const Tensor& dy) {
  ASSIGN_OR_RETURN(const Tensor input, tp_.GatherSequence(ctx, x));
  ops::LinearWeightGrad(ctx, input, dy, weight_.grad, bias_.grad);
  return absl::OkStatus();
}

RowParallelLinear::RowParallelLinear(const std::string& name, int64_t in, int64_t out,
                                     const TpGroup& tp, Device device)
    : in_(in), out_(out), tp_(tp) {
  TRIDENT_CHECK_EQ(in % tp.size(), 0) << name << ": " << in << " input features over tp "
                                      << tp.size();
  weight_ = MakeParameter(name + ".weight", {in / tp.size(), out}, /*weight_decay=*/true,
                          SplitLayout({in, out}, 0, tp, 1), device);
  bias_ = MakeParameter(name + ".bias", {out}, /*weight_decay=*/false, Replicated({out}),
                        device);
}

void RowParallelLinear::Initialize(const ExecContext& ctx, uint64_t seed, float std) {
  MatrixShard shard{in_, out_, tp_.rank() * local_in_features(), 0};
  FillNormal(ctx, weight_.value, seed, weight_.name, std, shard);
  ops::Fill(ctx, bias_.value, 0.0f);
}

absl::Status RowParallelLinear::Forward(const ExecContext& ctx, const Tensor& x,
                                        const Tensor& y) const {
  const Tensor partial = tp_.PartialSums(ctx, {x.dim(0), out_}, y);
  ops::Gemm(ctx, x, Trans::kNo, weight_.value, Trans::kNo, partial);
  RETURN_IF_ERROR(tp_.ReduceToLocal(ctx, partial, y));
  ops::BiasAdd(ctx, bias_.value, y);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> RowParallelLinear::BackwardInput(const ExecContext& ctx, const Tensor& dy,
                                                        const Tensor& dx) const {
  ASSIGN_OR_RETURN(Tensor d_out, tp_.GatherSequence(ctx, dy));
  ops::Gemm(ctx, d_out, Trans::kNo, weight_.value, Trans::kYes, dx);
  return d_out;
}

void RowParallelLinear::BackwardWeights(const ExecContext& ctx, const Tensor& x,
                                        const Tensor& dy) {
  ops::LinearWeightGrad(ctx, x, dy, weight_.grad, bias_.grad);
}

}  // namespace trident::tp
