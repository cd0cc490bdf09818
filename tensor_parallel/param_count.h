#ifndef TRIDENT_TENSOR_PARALLEL_PARAM_COUNT_H_
#define TRIDENT_TENSOR_PARALLEL_PARAM_COUNT_H_

// The analytic number of parameter elements one tensor-parallel rank holds for
// a GPT stage (the layout transformer::GptStage builds), for memory planning
// and to check the built model against.
//
// Per rank, with h = hidden, f = ffn width, V' = padded vocabulary, P = positions:
//   embedding (first stage):  wte V'/tp * h (padding rows included) + wpe P * h
//   each block:               ln_1, ln_2: 2h each (replicated)
//                             c_attn 3h*h/tp + 3h/tp, c_proj h/tp*h + h (bias replicated)
//                             c_fc   f*h/tp + f/tp,   c_proj f/tp*h + h (bias replicated)
//   head (last stage):        ln_f 2h, plus its own wte V'/tp * h when the stage
//                             has no embedding (tied weight copied across stages).

#include <cstdint>

#include "absl/status/statusor.h"

namespace trident::tp {

// Plain numbers (tensor_parallel does not depend on transformer's config).
struct StageShape {
  int64_t vocab_size = 0;
  int64_t padded_vocab = 0;
  int64_t positions = 0;
  int64_t hidden = 0;
  int64_t ffn_hidden = 0;
  int64_t num_heads = 0;
  int64_t num_layers = 0;  // Blocks in this stage.
  bool has_embedding = true;
  bool has_head = true;
};

struct ParameterCount {
  int64_t sharded = 0;     // Elements of this rank's shards of split parameters.
  int64_t replicated = 0;  // Elements every rank of the group holds in full.
  int64_t total() const { return sharded + replicated; }
};

// INVALID_ARGUMENT naming the field when a size is not positive (num_layers may
// be 0), tp < 1, or tp does not divide num_heads, ffn_hidden or padded_vocab, or
// padded_vocab < vocab_size.
absl::StatusOr<ParameterCount> StageParameterCountPerRank(const StageShape& shape, int tp);

}  // namespace trident::tp

#endif  // TRIDENT_TENSOR_PARALLEL_PARAM_COUNT_H_
