#include "tensor_parallel/vocab_parallel.h"

#include <algorithm>
#include <limits>

#include "core/check.h"
#include "core/ops/cross_entropy.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/gemm.h"
#include "core/random.h"
#include "core/status_macros.h"
#include "tensor_parallel/linear.h"

namespace trident::tp {

using ops::Trans;

VocabShard VocabShard::For(int64_t vocab, int64_t padded_vocab, const TpGroup& tp) {
  TRIDENT_CHECK_GE(padded_vocab, vocab);
  return VocabShard{vocab, padded_vocab, ShardRange(padded_vocab, tp.size(), tp.rank())};
}

int64_t VocabShard::valid_rows() const {
  return std::clamp<int64_t>(vocab - rows.begin, 0, rows.size());
}

Parameter MakeTokenEmbedding(const VocabShard& shard, int64_t hidden, Device device) {
  ShardLayout layout;
  layout.global_shape = {shard.padded_vocab, hidden};
  layout.split_dim = 0;
  layout.num_shards = static_cast<int>(shard.padded_vocab / shard.rows.size());
  layout.shard_index = static_cast<int>(shard.rows.begin / shard.rows.size());
  return MakeParameter("wte.weight", {shard.rows.size(), hidden}, /*weight_decay=*/true,
                       layout, device);
}

void InitializeTokenEmbedding(const ExecContext& ctx, const VocabShard& shard, uint64_t seed,
                              float std, Parameter& wte) {
  // Element (row, col) of the real [vocab, hidden] table gets the serial model's
  // value wherever it lives; padding rows stay zero.
  ops::Fill(ctx, wte.value, 0.0f);
  const int64_t rows = shard.valid_rows();
  if (rows > 0) {
    const int64_t hidden = wte.value.dim(1);
    MatrixShard where{shard.vocab, hidden, shard.rows.begin, 0};
    FillNormal(ctx, wte.value.Slice(0, 0, rows), seed, wte.name, std, where);
  }
}

VocabParallelEmbedding::VocabParallelEmbedding(const VocabShard& shard, int64_t positions,
                                               int64_t hidden, const TpGroup& tp,
                                               Device device)
    : shard_(shard), tp_(tp) {
  wte_ = MakeTokenEmbedding(shard, hidden, device);
  ShardLayout wpe_layout;
  wpe_layout.global_shape = {positions, hidden};
  wpe_ = MakeParameter("wpe.weight", {positions, hidden}, /*weight_decay=*/true, wpe_layout,
                       device);
}

void VocabParallelEmbedding::Initialize(const ExecContext& ctx, uint64_t seed, float std) {
  InitializeTokenEmbedding(ctx, shard_, seed, std, wte_);
  FillNormal(ctx, wpe_.value, seed, wpe_.name, std);
}

absl::Status VocabParallelEmbedding::Forward(const ExecContext& ctx, const Tensor& tokens,
                                             const Tensor& out) const {
  const int64_t batch = tokens.dim(0), seq = tokens.dim(1), hidden = wte_.value.dim(1);
  const Tensor partial =
      tp_.PartialSums(ctx, {batch, seq, hidden}, out).Reshape({batch, seq, hidden});
  ops::GatherRows(ctx, tokens, wte_.value, shard_.rows.begin, partial);
  // The position rows join rank 0's partial sum, before the reduction, so
  // that a chunk needs no positions of its own: every element then sums
  // wte[token] + wpe[position] (in one order or the other, which is the same
  // float) with exact zeros, equal to the serial embedding bit for bit.
  if (tp_.rank() == 0) ops::AddPositionEmbedding(ctx, wpe_.value, partial);
  return tp_.ReduceToLocal(ctx, partial, out);
}

absl::Status VocabParallelEmbedding::BackwardWeights(const ExecContext& ctx, const Tensor& tokens,
                                                     const Tensor& dout) {
  ASSIGN_OR_RETURN(const Tensor whole, tp_.GatherSequence(ctx, dout));
  const Tensor d_out = whole.Reshape({tokens.dim(0), tokens.dim(1), wte_.grad.dim(1)});
  ops::ScatterAddRows(ctx, tokens, d_out, shard_.rows.begin, wte_.grad);
  ops::PositionEmbeddingGrad(ctx, d_out, wpe_.grad);
  return absl::OkStatus();
}

VocabParallelCrossEntropy::VocabParallelCrossEntropy(const VocabShard& shard, const TpGroup& tp,
                                                     int32_t ignore_index)
    : shard_(shard), tp_(tp) {
  options_.ignore_index = ignore_index;
  // A shard made only of padding owns no real token: its start is clamped to
  // the vocabulary's end, which keeps the ops' range checks meaningful.
  options_.vocab_start = std::min(shard.rows.begin, shard.vocab);
  options_.valid_columns = shard.valid_rows();
  options_.vocab_size = shard.vocab;
}

absl::Status VocabParallelCrossEntropy::Forward(const ExecContext& ctx, const Tensor& wte,
                                                const Tensor& x, const Tensor& targets,
                                                const Tensor& logits, const Tensor& losses,
                                                const Tensor& logsumexp) const {
  ASSIGN_OR_RETURN(const Tensor input, tp_.GatherSequence(ctx, x));
  ops::Gemm(ctx, input, Trans::kNo, wte, Trans::kYes, logits);
  const int64_t n = targets.numel();
  Tensor row_max = Tensor::Empty({n}, DType::kFloat32, ctx.allocator());
  Tensor sum_exp = Tensor::Empty({n}, DType::kFloat32, ctx.allocator());
  Tensor target_logit = Tensor::Empty({n}, DType::kFloat32, ctx.allocator());
  // A shard made only of padding contributes the identities of each reduction.
  const bool all_padding = shard_.valid_rows() == 0;
  if (all_padding) {
    ops::Fill(ctx, row_max, -std::numeric_limits<float>::infinity());
  } else {
    ops::RowMax(ctx, logits, options_, row_max);
  }
  if (absl::Status s = tp_.AllReduceMax(row_max); !s.ok()) return s;
  if (all_padding) {
    ops::Fill(ctx, sum_exp, 0.0f);
    ops::Fill(ctx, target_logit, 0.0f);
  } else {
    ops::RowSumExp(ctx, logits, row_max, options_, sum_exp);
    ops::TargetLogit(ctx, logits, targets, options_, target_logit);
  }
  if (absl::Status s = tp_.AllReduceSum(sum_exp); !s.ok()) return s;
  if (absl::Status s = tp_.AllReduceSum(target_logit); !s.ok()) return s;
  ops::CombineCrossEntropyParts(ctx, row_max, sum_exp, target_logit, targets,
                                options_.ignore_index, losses, logsumexp);
  return absl::OkStatus();
}

absl::Status VocabParallelCrossEntropy::BackwardInput(const ExecContext& ctx, const Tensor& wte,
                                                      const Tensor& targets,
                                                      const Tensor& logsumexp, float grad_scale,
                                                      const Tensor& logits_to_grad,
                                                      const Tensor& dx) const {
  if (shard_.valid_rows() == 0) {
    ops::Fill(ctx, logits_to_grad, 0.0f);  // Padding logits have no gradient.
  } else {
    ops::CrossEntropyBackward(ctx, logits_to_grad, targets, logsumexp, grad_scale, options_,
                              logits_to_grad);
  }
  const Tensor partial = tp_.PartialSums(ctx, {targets.numel(), wte.dim(1)}, dx);
  ops::Gemm(ctx, logits_to_grad, Trans::kNo, wte, Trans::kNo, partial);
  return tp_.ReduceToLocal(ctx, partial, dx);
}

absl::Status VocabParallelCrossEntropy::BackwardWeights(const ExecContext& ctx, const Tensor& x,
                                                        const Tensor& dlogits,
                                                        const Tensor& dwte) const {
  ASSIGN_OR_RETURN(const Tensor input, tp_.GatherSequence(ctx, x));
  ops::Gemm(ctx, dlogits, Trans::kYes, input, Trans::kNo, dwte, 1.0f, 1.0f);
  return absl::OkStatus();
}

}  // namespace trident::tp
