#ifndef TRIDENT_CORE_OPS_ATTENTION_H_
#define TRIDENT_CORE_OPS_ATTENTION_H_

// Causal multi-head self-attention on a fused QKV activation, memory-efficient
// ("flash", Dao et al. 2022): the forward saves the per-row log-sum-exp of the
// scores, not the T x T probabilities, and the backward recomputes the
// probabilities from q, k and that statistic. This is the interface of cuDNN's
// fused attention (it saves the softmax statistics), so a GPU backend slots in.
//
// Layout (GPT-2's c_attn output, so no reshuffling copies are needed):
//   qkv   [B, T, 3 * H * D]: the last dim is [3][H][D]: all heads' queries, then
//         keys, then values; H heads (num_heads) of head_dim D.
//   out   [B, T, H * D]: the last dim is [H][D], ready for the output projection.
//   lse   [B, H, T]: row i's log sum_{j <= i} e^(s_ij), s = Q K^T / sqrt(D);
//         written by the forward for the backward.
//   dout like out, dqkv like qkv.
// All contiguous fp32. With tensor parallelism a rank passes its own heads:
// qkv [B, T, 3 * (H/tp) * D] in the same [3][H/tp][D] order.
//
// out = softmax(mask(Q K^T / sqrt(D))) V with the mask j <= i. The backward
// overwrites all of dqkv; it needs the forward's out (for rowsum(dout * out)),
// which the model keeps anyway as the input of the output projection.
// Activation memory between forward and backward: B * H * T floats (lse)
// instead of B * H * T^2 (probabilities).
//
// CPU: per (batch, head), tiles of 64 query rows against tiles of 256 key
// columns with an online softmax, tiles above the diagonal skipped; (batch,
// head) pairs run in parallel over the context's threads, and the results are
// bitwise the same for any thread count.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

void AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads, const Tensor& out,
                      const Tensor& lse);

// qkv, out and lse as given to / produced by the forward; dout = dLoss/dout.
void AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                       const Tensor& lse, const Tensor& dout, int num_heads, const Tensor& dqkv);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_ATTENTION_H_
