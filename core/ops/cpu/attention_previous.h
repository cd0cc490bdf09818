#ifndef TRIDENT_CORE_OPS_CPU_ATTENTION_PREVIOUS_H_
#define TRIDENT_CORE_OPS_CPU_ATTENTION_PREVIOUS_H_

// Bench-only: the memory-efficient CPU attention kernel before issue 15's
// rewrite, the baseline of //core/ops:attention_bench. Same interface and
// layouts as core/ops/attention.h.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops::cpu {

void PreviousAttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                              const Tensor& out, const Tensor& lse);

void PreviousAttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                               const Tensor& lse, const Tensor& dout, int num_heads,
                               const Tensor& dqkv);

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_ATTENTION_PREVIOUS_H_
