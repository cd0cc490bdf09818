#ifndef TRIDENT_TENSOR_PARALLEL_VOCAB_PARALLEL_H_
#define TRIDENT_TENSOR_PARALLEL_VOCAB_PARALLEL_H_

// Vocabulary parallelism: the token embedding is split by rows (vocabulary
// ranges) over the tensor-parallel group, and the tied output head computes
// the softmax cross-entropy on its logits shard without ever gathering the
// logits (Megatron's vocab-parallel embedding and cross-entropy).
//
// The vocabulary is padded to `padded_vocab` rows (a multiple of the group
// size, see topology::PaddedVocabSize) so every rank holds the same number of
// rows. Padded rows start at zero, are never looked up (token ids are below
// the real vocabulary) and their logits are masked out of the softmax, so the
// padding never changes the loss: every tp degree computes the serial model.

#include "absl/status/status.h"
#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"

namespace trident::tp {

// The rows of the (padded) vocabulary one rank holds.
struct VocabShard {
  int64_t vocab = 0;         // Real tokens.
  int64_t padded_vocab = 0;  // Rows of the full table, a multiple of the group size.
  Range rows;                // This rank's rows of the full table.

  static VocabShard For(int64_t vocab, int64_t padded_vocab, const TpGroup& tp);
  // Local rows that are real tokens; the rest of the shard is padding.
  int64_t valid_rows() const;
};

// This rank's shard of the token embedding "wte.weight" [rows, hidden].
Parameter MakeTokenEmbedding(const VocabShard& shard, int64_t hidden, Device device);
// Real rows get the serial model's N(0, std^2) values; padding rows zero. Two
// copies made this way (first and last pipeline stage) start bitwise equal.
void InitializeTokenEmbedding(const ExecContext& ctx, const VocabShard& shard, uint64_t seed,
                              float std, Parameter& wte);

// Token + position embedding: out = wte[token] + wpe[position]. "wte.weight" is
// split by vocabulary rows; "wpe.weight" is replicated.
class VocabParallelEmbedding {
 public:
  VocabParallelEmbedding(const VocabShard& shard, int64_t positions, int64_t hidden,
                         const TpGroup& tp, Device device);

  void Initialize(const ExecContext& ctx, uint64_t seed, float std);

  // tokens [B, T] int32 -> out [B, T, hidden]: masked lookup of this rank's rows,
  // all-reduced over the group (each token's row lives on exactly one rank, so the
  // sum adds zeros and is exact), plus the position rows. With sequence
  // parallelism out is this rank's row chunk [B * T / tp, hidden] of the same
  // sum, reduce-scattered (still bit for bit the serial embedding).
  absl::Status Forward(const ExecContext& ctx, const Tensor& tokens, const Tensor& out) const;
  // dwte[rows of this rank] += dout, dwpe += dout summed over the batch. `dout`
  // is shaped like Forward's out: with sequence parallelism the chunk, which
  // both gradients need whole, so it is all-gathered here (Megatron's backward
  // of the scatter into the sequence-parallel region).
  absl::Status BackwardWeights(const ExecContext& ctx, const Tensor& tokens, const Tensor& dout);

  Parameter& wte() { return wte_; }
  Parameter& wpe() { return wpe_; }
  const VocabShard& shard() const { return shard_; }

 private:
  VocabShard shard_;
  TpGroup tp_;
  Parameter wte_;
  Parameter wpe_;
};

// The tied output head and its loss: logits = x wte^T on this rank's vocabulary
// shard; softmax cross-entropy with the row max, the sum of exponentials and
// the target logit each all-reduced over the group.
class VocabParallelCrossEntropy {
 public:
  // `ignore_index`: targets with this value add no loss and no gradient.
  VocabParallelCrossEntropy(const VocabShard& shard, const TpGroup& tp, int32_t ignore_index);

  // x [N, hidden] (with sequence parallelism this rank's chunk [N / tp,
  // hidden], all-gathered first); wte this rank's [rows, hidden]; targets [N]
  // int32; logits [N, rows] (kept for the backward); losses and logsumexp [N]:
  // losses[i] is token i's loss.
  absl::Status Forward(const ExecContext& ctx, const Tensor& wte, const Tensor& x,
                       const Tensor& targets, const Tensor& logits, const Tensor& losses,
                       const Tensor& logsumexp) const;

  // Turns `logits` into dLoss/dlogits in place, for the loss
  // grad_scale * sum(losses), and writes dx shaped like Forward's x: [N,
  // hidden] all-reduced, or with sequence parallelism this rank's
  // reduce-scattered chunk.
  absl::Status BackwardInput(const ExecContext& ctx, const Tensor& wte, const Tensor& targets,
                             const Tensor& logsumexp, float grad_scale,
                             const Tensor& logits_to_grad, const Tensor& dx) const;

  // dwte += dlogits^T x (the tied head's share of the embedding gradient); x
  // as Forward took it (a chunk is all-gathered again here, as for
  // ColumnParallelLinear::BackwardWeights: the head is column-parallel over
  // the vocabulary).
  absl::Status BackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& dlogits,
                               const Tensor& dwte) const;

 private:
  VocabShard shard_;
  TpGroup tp_;
  ops::CrossEntropyOptions options_;
};

}  // namespace trident::tp

#endif  // TRIDENT_TENSOR_PARALLEL_VOCAB_PARALLEL_H_
