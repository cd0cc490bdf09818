#ifndef TRIDENT_TRANSFORMER_BLOCK_H_
#define TRIDENT_TRANSFORMER_BLOCK_H_

// One GPT-2 transformer block, tensor-parallel (Megatron):
//
//   h   = x + Proj(Attention(QKV(LN1(x))))      QKV column-parallel by heads,
//   out = h + FC2(GELU(FC1(LN2(h))))            Proj and FC2 row-parallel.
//
// Each rank holds num_heads / tp whole heads and ffn / tp MLP columns; the
// LayerNorms are replicated. Activations between blocks are [B, T, hidden],
// replicated over the tensor-parallel group.
//
// With sequence parallelism (Korthikanti et al. 2022, a property of the tp
// group: TpGroup::sequence_parallel) the activations between blocks are
// instead split by tokens: the flattened [N = B * T, hidden] is cut into tp
// contiguous row chunks, and rank r holds rows [r N / tp, (r+1) N / tp). The
// LayerNorms and residual adds run on the chunk; the linear layers gather and
// scatter it themselves (tensor_parallel/linear.h), so the block reads the same
// either way. The LayerNorm gradients are then partial sums over this rank's
// tokens (GptStage::ReduceSequenceParallelGradients sums them); the
// row-parallel biases get their gradient from the all-gathered output
// gradient, so it stays whole.
//
// Backward is split (DESIGN.md rule 4): BackwardInput computes dx and keeps
// the gradients of every linear layer's output; BackwardWeights turns them
// into weight gradients (accumulated) and releases the micro-batch's state.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/linear.h"
#include "tensor_parallel/tp_group.h"
#include "transformer/layer_norm.h"
#include "transformer/model.pb.h"

namespace trident::transformer {

// Activation recomputation (Korthikanti et al. 2022), the block's side of
// topology's Recompute.Policy:
//  - kNone: the forward keeps every tensor of BlockActivations below.
//  - kSelective: the forward drops the attention core's saved state,
//    attn_lse [B, heads / tp, T]; BackwardInput recomputes it from the kept
//    qkv (the same kernel on the same inputs, so the gradients are bitwise the
//    same). With the memory-efficient attention (core/ops/attention.h) this
//    saves only B a T / t floats: the T^2 probabilities that made it worth
//    it (Korthikanti et al.) are never stored at all.
//  - kFull: the forward keeps only `input` (and `output`, the next block's
//    input); BackwardInput first reruns the whole forward from `input` (the
//    same linear layers, so the same all-gathers / reduce-scatters in the same
//    order on every tp rank, with the layer's parameters present because
//    GptStage asks for them around BackwardInput), then runs as usual. What
//    BackwardWeights needs stays from BackwardInput until BackwardWeights, as
//    without recomputation (zero-bubble's late W).
//
// Stash per block after Forward, fp32 (4 bytes), N = B * T tokens, h hidden,
// a heads, f ffn width, t = tp, n = N / t with sequence parallelism and N
// without (the rows the LayerNorms and residuals hold), HeldBytes():
//   kNone:      4 [3 n h (input, ln1_out, residual) + n h (ln2_out) + 4 n (LN stats)
//                  + 3 N h / t (qkv) + N h / t (attn_out) + 2 N f / t (fc_pre, fc_act)
//                  + a B T / t (attn_lse)]
//   kSelective: kNone - 4 a B T / t
//   kFull:      4 n h (input only)
// (BlockStashBytes below computes it.)
enum class Recompute { kNone, kSelective, kFull };

// The analytic stash of one block after Forward under `policy` (the formula
// above): `local_rows` = n, `rows` = N = batch * seq.
int64_t BlockStashBytes(Recompute policy, int64_t batch, int64_t seq, int64_t hidden, int64_t ffn,
                        int heads, int tp, bool sequence_parallel);

// What one micro-batch leaves in a block between its forward and backward.
// With sequence parallelism every [N, hidden] tensor below (input, ln1_out,
// residual, ln2_out, output, d_ln1_out, d_ln2_out) and the LayerNorm stats
// hold this rank's row chunk [N / tp, ...] only: the column-parallel layers
// gather ln1_out / ln2_out again for their weight gradients, as Megatron
// does. d_fc2_out and d_proj_out are the row-parallel layers' output
// gradients as their BackwardInput gathered them, [N, hidden]: their weight
// gradients read them whole, and keeping them saves the all-gather that
// re-gathering would repeat (Megatron keeps them too).
struct BlockActivations {
  Tensor input;  // x [N, hidden], N = B * T.
  Tensor ln1_out;
  LayerNormStats ln1;
  Tensor qkv;         // [B, T, 3 * hidden / tp]
  Tensor attn_lse;    // [B, heads / tp, T]: the attention's softmax statistics
  Tensor attn_out;    // [N, hidden / tp]
  Tensor residual;    // h [N, hidden]
  Tensor ln2_out;
  LayerNormStats ln2;
  Tensor fc_pre;  // FC1 output before GELU [N, ffn / tp]
  Tensor fc_act;  // after GELU
  Tensor output;  // [N, hidden]

  // Saved by BackwardInput for BackwardWeights: dLoss/d(output of) each layer.
  Tensor d_fc2_out;
  Tensor d_fc_pre;
  Tensor d_ln2_out;
  Tensor d_proj_out;
  Tensor d_qkv;
  Tensor d_ln1_out;

  // kFull after Forward: only `input` and `output` are held, and
  // BackwardInput reruns the forward on the micro-batch's shape.
  bool recompute_forward = false;
  int64_t batch = 0;
  int64_t seq = 0;

  // Every tensor above (some may be undefined).
  std::vector<const Tensor*> tensors() const;
  // Bytes of the distinct defined tensors held, except `output`: it is the
  // next block's input (or the stage's output, which the next stage holds),
  // so a stack of blocks counts each activation once. After Forward this is
  // the block's activation memory.
  int64_t HeldBytes() const;
};

class TransformerBlock {
 public:
  // Block `layer` (global index, for parameter names "h.<layer>.*"), sequence
  // parallel when `tp` is.
  TransformerBlock(const GptConfig& config, int layer, const tp::TpGroup& tp, Device device);

  void Initialize(const ExecContext& ctx, uint64_t seed);

  // What Forward keeps and BackwardInput recomputes (kNone by default).
  void set_recompute(Recompute policy) { recompute_ = policy; }
  Recompute recompute() const { return recompute_; }

  // x [B, T, hidden] -> acts->output [B, T, hidden].
  absl::Status Forward(const ExecContext& ctx, const Tensor& x, BlockActivations* acts) const;
  // Either layout, with the token shape given: x is [B, T, hidden] (or [B * T,
  // hidden]) or, with sequence parallelism, this rank's chunk [B * T / tp,
  // hidden]; acts->output has x's shape.
  absl::Status Forward(const ExecContext& ctx, const Tensor& x, int64_t batch, int64_t seq,
                       BlockActivations* acts) const;
  // dy = dLoss/d(output) -> dx shaped like the input (allocated from ctx).
  absl::Status BackwardInput(const ExecContext& ctx, const Tensor& dy, BlockActivations* acts,
                             Tensor* dx) const;
  // Accumulates every weight gradient of this micro-batch, then clears acts.
  absl::Status BackwardWeights(const ExecContext& ctx, BlockActivations* acts);

  // In a fixed order: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj.
  void AppendParameters(ParameterList& params);

  // The parameters whose gradients are partial sums over this rank's tokens
  // under sequence parallelism (ln_1 and ln_2 weights and biases).
  void AppendSequenceParallelPartials(ParameterList& params);

 private:
  // The forward itself; keeps every activation when `keep_all`.
  absl::Status RunForward(const ExecContext& ctx, const Tensor& x, int64_t batch, int64_t seq,
                          bool keep_all, BlockActivations* acts) const;

  Recompute recompute_ = Recompute::kNone;
  int64_t hidden_;
  int64_t ffn_;
  int local_heads_;
  float init_std_;
  float residual_init_std_;
  tp::TpGroup tp_;
  LayerNorm ln1_;
  tp::ColumnParallelLinear qkv_;
  tp::RowParallelLinear proj_;
  LayerNorm ln2_;
  tp::ColumnParallelLinear fc1_;
  tp::RowParallelLinear fc2_;
};

}  // namespace trident::transformer

#endif  // TRIDENT_TRANSFORMER_BLOCK_H_
