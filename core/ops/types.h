#ifndef TRIDENT_CORE_OPS_TYPES_H_
#define TRIDENT_CORE_OPS_TYPES_H_

// Small option types shared by the op headers and the kernel backends.

#include <cstdint>

namespace trident::ops {

// Whether a GEMM operand is used as stored or transposed.
enum class Trans : uint8_t { kNo, kYes };

// Options of the softmax cross-entropy ops (core/ops/cross_entropy.h).
struct CrossEntropyOptions {
  // Rows whose target equals this contribute no loss and get zero gradient.
  int32_t ignore_index = -100;
  // The global vocabulary id of logits column 0. Non-zero on a shard of a
  // vocabulary-parallel head, which holds columns [vocab_start, vocab_start + V_local).
  int64_t vocab_start = 0;
  // Columns at or beyond this local index are padding (a vocabulary padded to a
  // multiple of tp or 64): excluded from the softmax, zero gradient. -1: none.
  int64_t valid_columns = -1;
  // The global vocabulary size; every target must be in [0, vocab_size) or equal
  // ignore_index. -1: vocab_start + the number of valid columns (no sharding).
  int64_t vocab_size = -1;
};

// AdamW hyper-parameters of one optimizer step (core/ops/optimizer.h). Doubles,
// like PyTorch's Python-side scalars: derived factors such as 1 - beta2 are
// formed in double and rounded to float once (1 - 0.999f would be off by 1e-5).
struct AdamWOptions {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  // Decoupled weight decay (Loshchilov & Hutter): param *= 1 - lr * weight_decay,
  // applied only to tensors stepped with WeightDecay::kApply.
  double weight_decay = 0.0;
  // 1 for the first update: the bias corrections use beta^step.
  int64_t step = 1;
  // Gradients are multiplied by this before use (clipping, loss-scale removal),
  // which saves a separate Scale pass; the gradient tensor is not modified.
  float grad_scale = 1.0f;
};

enum class WeightDecay : uint8_t { kApply, kSkip };

// What ops::LinearForward (core/ops/linear.h) applies to the product x W:
// the bias, or the bias then GELU (keeping the pre-activation).
enum class LinearEpilogue : uint8_t { kBias, kBiasGelu };

// What embedding kernels do with an id outside the table's rows: abort (the
// serial embedding, where it is a bug) or skip it (a vocabulary-parallel shard,
// where other ranks own it): a zero row forward, no gradient backward.
enum class OutOfRangeIds : uint8_t { kAbort, kSkip };

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_TYPES_H_
