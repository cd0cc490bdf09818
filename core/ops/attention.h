#ifndef TRIDENT_CORE_OPS_ATTENTION_H_
#define TRIDENT_CORE_OPS_ATTENTION_H_

// Causal multi-head self-attention on a fused QKV activation.
//
// Layout (GPT-2's c_attn output, so no reshuffling copies are needed):
//   qkv   [B, T, 3 * H * D]: the last dim is [3][H][D]: all heads' queries, then
//         keys, then values; H heads (num_heads) of head_dim D.
//   out   [B, T, H * D]: the last dim is [H][D], ready for the output projection.
//   probs [B, H, T, T]: the softmax probabilities, saved by the forward for the
//         backward (row i is zero for keys j > i).
//   dout like out, dqkv like qkv.
// All contiguous fp32. With tensor parallelism a rank passes its own heads:
// qkv [B, T, 3 * (H/tp) * D] in the same [3][H/tp][D] order.
//
// scores = Q K^T / sqrt(D), masked to j <= i, softmax with the row maximum
// subtracted, out = P V. The backward overwrites all of dqkv.
//
// CPU: per (batch, head), GEMMs over causal row blocks (only the lower triangle
// of the score matrix is computed) plus one fused, vectorised
// max/exp/normalise pass per row; (batch, head) pairs run in parallel over the
// context's threads. The probs are kept (B*H*T*T floats) instead of recomputed:
// the right trade for the short contexts trained on CPU.

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

void AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads, const Tensor& out,
                      const Tensor& probs);

// qkv and probs as given to / produced by the forward; dout = dLoss/dout.
void AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& probs,
                       const Tensor& dout, int num_heads, const Tensor& dqkv);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_ATTENTION_H_
