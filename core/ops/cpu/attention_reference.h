#ifndef TRIDENT_CORE_OPS_CPU_ATTENTION_REFERENCE_H_
#define TRIDENT_CORE_OPS_CPU_ATTENTION_REFERENCE_H_

// Test-only: causal attention that stores the softmax probabilities
// probs [B, H, T, T] between forward and backward, as the CPU backend did
// before the memory-efficient kernel (core/ops/cpu/attention.cc). The tests
// compare the new kernel with it; nothing else may use it. Layouts as in
// core/ops/attention.h; all tensors contiguous fp32 on the CPU.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops::cpu {

void ReferenceAttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                               const Tensor& out, const Tensor& probs);

void ReferenceAttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& probs,
                                const Tensor& dout, int num_heads, const Tensor& dqkv);

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_ATTENTION_REFERENCE_H_
