#ifndef TRIDENT_TOPOLOGY_LAYOUT_VALIDATION_H_
#define TRIDENT_TOPOLOGY_LAYOUT_VALIDATION_H_

// Checks a ParallelLayout against the world size and the model before
// anything starts (DESIGN.md rule 7): a bad layout is an INVALID_ARGUMENT
// whose message names the field, its value and the rule, e.g.
//   tensor_parallel=3 must divide num_heads=8 (each tp rank owns whole attention heads)
//
// The rules are checked in this fixed order and the FIRST broken one is
// returned (fix it, rerun, see the next):
//   1. tensor_parallel, pipeline_parallel, data_parallel,
//      virtual_pipeline_stages, micro_batch_size, num_micro_batches >= 1.
//   2. The model's num_layers, num_heads, hidden_size, ffn_hidden_size,
//      vocab_size >= 1 (seq_length >= 0).
//   3. The grid (ValidateGridShape): world size >= 1,
//      tensor_parallel x pipeline_parallel x data_parallel == world size,
//      rank_order a permutation of tp, dp, pp.
//   4. tensor_parallel divides num_heads, hidden_size, ffn_hidden_size.
//      The vocabulary never fails: it is padded (see PaddedVocabSize).
//   5. The layer split: without layers_per_stage,
//      pipeline_parallel x virtual_pipeline_stages divides num_layers; with it,
//      it has pipeline_parallel x virtual_pipeline_stages entries, each >= 1,
//      summing to num_layers.
//   6. The schedule: virtual_pipeline_stages > 1 only with INTERLEAVED_1F1B;
//      with INTERLEAVED_1F1B and pipeline_parallel > 1, num_micro_batches is a
//      multiple of pipeline_parallel and virtual_pipeline_stages >= 2 (with one
//      chunk per stage it would silently be 1F1B). (GPipe, 1F1B and ZB-H1 run any number
//      of micro-batches; fewer than the stages only widens the bubble.)
//   7. global_batch_size, when set (non-zero), equals
//      micro_batch_size x num_micro_batches x data_parallel (DeriveMicroBatches
//      fills num_micro_batches from it first when it is unset).
//   8. sequence_parallel needs tensor_parallel > 1, and tensor_parallel
//      dividing seq_length when the model's seq_length is known.
//   9. zero_stage in 0..3.
//  10. topk_ratio in (0, 1] with gradient_compression TOPK; grad_bucket_mb > 0.

#include <cstdint>

#include "absl/status/status.h"
#include "topology/layout.pb.h"

namespace trident::topology {

// The model sizes the layout rules need. Topology does not depend on the
// transformer package; the training layer fills this from the model config.
struct ModelDimensions {
  int num_layers = 0;
  int num_heads = 0;
  int64_t hidden_size = 0;
  int64_t ffn_hidden_size = 0;
  int64_t vocab_size = 0;
  // Tokens per sequence; 0 when unknown, which skips the sequence-parallel
  // divisibility rule.
  int64_t seq_length = 0;
};

absl::Status ValidateLayout(const ParallelLayout& layout, int world_size,
                            const ModelDimensions& model);

// Megatron's --global-batch-size: with global_batch_size > 0 and
// num_micro_batches unset, sets num_micro_batches = global_batch_size /
// (micro_batch_size x data_parallel), or fails (INVALID_ARGUMENT, layout
// untouched) showing the arithmetic when that does not divide. Anything else
// is left alone (rule 7 then checks a num_micro_batches that is set).
absl::Status DeriveMicroBatches(ParallelLayout* layout);

// Megatron's vocabulary padding (--make-vocab-size-divisible-by 128).
inline constexpr int kVocabPaddingMultiple = 128;

// The vocabulary size the embedding table and the output layer are built
// with: vocab_size rounded up to a multiple of kVocabPaddingMultiple x
// tensor_parallel, so every tp rank holds an equal slice of whole 128-row
// blocks (50257 -> 50304 at tp=1, 50432 at tp=2). Rows at or beyond
// vocab_size are padding: token ids are below vocab_size, so they are never
// looked up, and their logits must be excluded from the softmax (the
// vocab-parallel cross-entropy masks them), so the loss does not depend on tp.
// Requires vocab_size >= 1 and tensor_parallel >= 1.
int64_t PaddedVocabSize(int64_t vocab_size, int tensor_parallel);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_LAYOUT_VALIDATION_H_
