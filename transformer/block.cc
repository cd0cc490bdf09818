#include "transformer/block.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/ops/attention.h"
#include "core/ops/elementwise.h"
#include "core/ops/gelu.h"
#include "core/status_macros.h"
#include "transformer/model_config.h"

namespace trident::transformer {

namespace {

std::string Name(int layer, const char* part) { return absl::StrCat("h.", layer, ".", part); }

// Rows x cols view of a contiguous activation.
Tensor Matrix(const Tensor& t, int64_t cols) { return t.Reshape({t.numel() / cols, cols}); }

}  // namespace

std::vector<const Tensor*> BlockActivations::tensors() const {
  return {&input,     &ln1_out,  &ln1.mean,  &ln1.rstd,   &qkv,    &attn_lse, &attn_out,
          &residual,  &ln2_out,  &ln2.mean,  &ln2.rstd,   &fc_pre, &fc_act,     &output,
          &d_fc2_out, &d_fc_pre, &d_ln2_out, &d_proj_out, &d_qkv,  &d_ln1_out};
}

int64_t BlockActivations::HeldBytes() const {
  absl::flat_hash_set<const void*> seen;
  int64_t bytes = 0;
  for (const Tensor* t : tensors()) {
    if (t == &output || !t->defined() || !seen.insert(t->raw_data()).second) continue;
    bytes += static_cast<int64_t>(t->nbytes());
  }
  return bytes;
}

TransformerBlock::TransformerBlock(const GptConfig& config, int layer, const tp::TpGroup& tp,
                                   Device device)
    : hidden_(config.hidden_size()),
      ffn_(FfnHiddenSize(config)),
      local_heads_(config.num_heads() / tp.size()),
      init_std_(config.init_std()),
      // GPT-2 scales the init of the projections that feed the residual stream.
      residual_init_std_(config.init_std() / std::sqrt(2.0f * config.num_layers())),
      tp_(tp),
      ln1_(Name(layer, "ln_1"), hidden_, config.layer_norm_epsilon(), device),
      qkv_(Name(layer, "attn.c_attn"), hidden_, 3 * hidden_, /*blocks=*/3, tp, device),
      proj_(Name(layer, "attn.c_proj"), hidden_, hidden_, tp, device),
      ln2_(Name(layer, "ln_2"), hidden_, config.layer_norm_epsilon(), device),
      fc1_(Name(layer, "mlp.c_fc"), hidden_, ffn_, /*blocks=*/1, tp, device),
      fc2_(Name(layer, "mlp.c_proj"), ffn_, hidden_, tp, device) {
  TRIDENT_CHECK_EQ(config.num_heads() % tp.size(), 0);
}

void TransformerBlock::Initialize(const ExecContext& ctx, uint64_t seed) {
  ln1_.Initialize(ctx);
  qkv_.Initialize(ctx, seed, init_std_);
  proj_.Initialize(ctx, seed, residual_init_std_);
  ln2_.Initialize(ctx);
  fc1_.Initialize(ctx, seed, init_std_);
  fc2_.Initialize(ctx, seed, residual_init_std_);
}

void TransformerBlock::AppendParameters(ParameterList& params) {
  for (Parameter* p : {&ln1_.weight(), &ln1_.bias(), &qkv_.weight(), &qkv_.bias(),
                       &proj_.weight(), &proj_.bias(), &ln2_.weight(), &ln2_.bias(),
                       &fc1_.weight(), &fc1_.bias(), &fc2_.weight(), &fc2_.bias()}) {
    params.push_back(p);
  }
}

void TransformerBlock::AppendSequenceParallelPartials(ParameterList& params) {
  for (Parameter* p : {&ln1_.weight(), &ln1_.bias(), &ln2_.weight(), &ln2_.bias()}) {
    params.push_back(p);
  }
}

absl::Status TransformerBlock::Forward(const ExecContext& ctx, const Tensor& x,
                                       BlockActivations* acts) const {
  TRIDENT_CHECK(x.ndim() == 3) << "block input must be [B, T, hidden], got " << x.DebugString();
  return Forward(ctx, x, x.dim(0), x.dim(1), acts);
}

int64_t BlockStashBytes(Recompute policy, int64_t batch, int64_t seq, int64_t hidden, int64_t ffn,
                        int heads, int tp, bool sequence_parallel) {
  const int64_t rows = batch * seq;
  const int64_t n = sequence_parallel ? rows / tp : rows;
  const int64_t f = 4;  // fp32
  if (policy == Recompute::kFull) return f * n * hidden;
  int64_t floats = 4 * n * hidden + 4 * n + 4 * rows * hidden / tp + 2 * rows * ffn / tp;
  if (policy == Recompute::kNone) floats += heads / tp * batch * seq;  // attn_lse
  return f * floats;
}

absl::Status TransformerBlock::Forward(const ExecContext& ctx, const Tensor& x, int64_t batch,
                                       int64_t seq, BlockActivations* acts) const {
  RETURN_IF_ERROR(RunForward(ctx, x, batch, seq, recompute_ == Recompute::kNone, acts));
  if (recompute_ == Recompute::kFull) {
    // Keep the input (and the output: the next block's input); the backward
    // recomputes the rest.
    BlockActivations kept;
    kept.input = acts->input;
    kept.output = acts->output;
    kept.recompute_forward = true;
    kept.batch = batch;
    kept.seq = seq;
    *acts = std::move(kept);
  }
  return absl::OkStatus();
}

absl::Status TransformerBlock::RunForward(const ExecContext& ctx, const Tensor& x, int64_t batch,
                                          int64_t seq, bool keep_all,
                                          BlockActivations* acts) const {
  const int64_t rows = batch * seq;
  // The LayerNorms and residual adds work on this rank's rows: all N, or its
  // chunk with sequence parallelism (the linear layers gather it).
  const int64_t local_rows = tp_.LocalRows(rows);
  TRIDENT_CHECK_EQ(x.numel(), local_rows * hidden_) << x.DebugString();
  const int64_t local_hidden = hidden_ / tp_.size();
  const int64_t local_ffn = ffn_ / tp_.size();
  const auto& alloc = ctx.allocator();
  // Activations in the input's dtype: 16-bit under mixed precision.
  auto empty = [&](std::initializer_list<int64_t> shape) {
    return Tensor::Empty(shape, x.dtype(), alloc);
  };

  acts->input = x;
  const Tensor x2d = Matrix(x, hidden_);

  // Attention half: LN1 -> QKV (column-parallel, this rank's heads) -> causal
  // attention -> Proj (row-parallel) -> residual add.
  acts->ln1_out = empty({local_rows, hidden_});
  acts->ln1 = ln1_.Forward(ctx, x2d, acts->ln1_out);
  acts->qkv = empty({batch, seq, 3 * local_hidden});
  RETURN_IF_ERROR(qkv_.Forward(ctx, acts->ln1_out, Matrix(acts->qkv, 3 * local_hidden)));
  {
    // Without keep_all the softmax statistics are dropped (selective) or the
    // whole stash is (full, by Forward).
    // The softmax statistics stay fp32 in every precision (as cuDNN's
    // fused attention keeps them): the backward's exp(s - lse) would lose
    // percents to a 16-bit lse.
    Tensor lse = Tensor::Empty({batch, local_heads_, seq}, DType::kFloat32, alloc);
    Tensor attn_out = empty({batch, seq, local_hidden});
    ops::AttentionForward(ctx, acts->qkv, local_heads_, attn_out, lse);
    if (keep_all) acts->attn_lse = lse;
    acts->attn_out = Matrix(attn_out, local_hidden);
  }
  acts->residual = empty({local_rows, hidden_});
  RETURN_IF_ERROR(proj_.Forward(ctx, acts->attn_out, acts->residual));

  // MLP half: residual add + LN2 (one fused op) -> FC1 + GELU (column-parallel,
  // one fused op) -> FC2 (row-parallel) -> add.
  acts->ln2_out = empty({local_rows, hidden_});
  acts->ln2 = ln2_.AddForward(ctx, acts->residual, x2d, acts->residual, acts->ln2_out);
  acts->fc_pre = empty({rows, local_ffn});
  acts->fc_act = empty({rows, local_ffn});
  RETURN_IF_ERROR(fc1_.ForwardGelu(ctx, acts->ln2_out, acts->fc_pre, acts->fc_act));
  acts->output = Tensor::Empty(x.shape(), x.dtype(), alloc);
  const Tensor out2d = Matrix(acts->output, hidden_);
  RETURN_IF_ERROR(fc2_.Forward(ctx, acts->fc_act, out2d));
  ops::Add(ctx, out2d, acts->residual, out2d);
  return absl::OkStatus();
}

absl::Status TransformerBlock::BackwardInput(const ExecContext& ctx, const Tensor& dy,
                                             BlockActivations* acts, Tensor* dx) const {
  if (acts->recompute_forward) {
    // Full recomputation: rerun this block's forward from its input, keeping
    // everything (the caller has made the parameters present). The output
    // is the next block's input already: keep the original.
    const Tensor output = acts->output;
    RETURN_IF_ERROR(RunForward(ctx, acts->input, acts->batch, acts->seq, /*keep_all=*/true, acts));
    acts->output = output;
    acts->recompute_forward = false;
  }
  const int64_t local_rows = dy.numel() / hidden_;
  const int64_t rows = acts->fc_pre.dim(0);  // Column-parallel outputs have all N rows.
  const int64_t local_hidden = hidden_ / tp_.size();
  const int64_t local_ffn = ffn_ / tp_.size();
  const auto& alloc = ctx.allocator();
  // Gradients in the activations' dtype.
  auto empty = [&](std::initializer_list<int64_t> shape) {
    return Tensor::Empty(shape, dy.dtype(), alloc);
  };

  // MLP half.
  const Tensor d_out = Matrix(dy, hidden_);
  acts->d_fc_pre = empty({rows, local_ffn});
  ASSIGN_OR_RETURN(acts->d_fc2_out, fc2_.BackwardInput(ctx, d_out, acts->d_fc_pre));
  ops::GeluBackward(ctx, acts->fc_pre, acts->d_fc_pre, acts->d_fc_pre);
  acts->d_ln2_out = empty({local_rows, hidden_});
  RETURN_IF_ERROR(fc1_.BackwardInput(ctx, acts->d_fc_pre, acts->d_ln2_out));
  // dLoss/d(residual) on this rank's rows: through LN2, plus the skip path.
  const Tensor d_residual = empty({local_rows, hidden_});
  ln2_.AddBackwardInput(ctx, acts->residual, acts->ln2, acts->d_ln2_out, d_out, d_residual);

  // Attention half.
  Tensor d_attn_out = empty({rows, local_hidden});
  ASSIGN_OR_RETURN(acts->d_proj_out, proj_.BackwardInput(ctx, d_residual, d_attn_out));
  acts->d_qkv = empty({acts->qkv.dim(0), acts->qkv.dim(1), 3 * local_hidden});
  const int64_t b = acts->qkv.dim(0);
  const int64_t t = acts->qkv.dim(1);
  if (!acts->attn_lse.defined()) {
    // Selective recomputation: the statistics again from the kept qkv (the
    // forward's kernel on the same input: the same bits). The output is
    // scratch: the kept attn_out holds the same values.
    acts->attn_lse = Tensor::Empty({b, local_heads_, t}, DType::kFloat32, alloc);
    const Tensor scratch = empty({b, t, local_hidden});
    ops::AttentionForward(ctx, acts->qkv, local_heads_, scratch, acts->attn_lse);
  }
  ops::AttentionBackward(ctx, acts->qkv, acts->attn_out.Reshape({b, t, local_hidden}),
                         acts->attn_lse, d_attn_out.Reshape({b, t, local_hidden}), local_heads_,
                         acts->d_qkv);
  acts->d_ln1_out = empty({local_rows, hidden_});
  RETURN_IF_ERROR(qkv_.BackwardInput(ctx, Matrix(acts->d_qkv, 3 * local_hidden), acts->d_ln1_out));
  *dx = Tensor::Empty(acts->input.shape(), dy.dtype(), alloc);
  const Tensor dx2d = Matrix(*dx, hidden_);
  ln1_.AddBackwardInput(ctx, Matrix(acts->input, hidden_), acts->ln1, acts->d_ln1_out, d_residual,
                        dx2d);

  // What only the forward's bookkeeping needed.
  acts->attn_lse = Tensor();
  acts->qkv = Tensor();
  acts->fc_pre = Tensor();
  acts->output = Tensor();
  return absl::OkStatus();
}

absl::Status TransformerBlock::BackwardWeights(const ExecContext& ctx, BlockActivations* acts) {
  fc2_.BackwardWeights(ctx, acts->fc_act, acts->d_fc2_out);
  RETURN_IF_ERROR(fc1_.BackwardWeights(ctx, acts->ln2_out, acts->d_fc_pre));
  ln2_.BackwardWeights(ctx, acts->residual, acts->ln2, acts->d_ln2_out);
  proj_.BackwardWeights(ctx, acts->attn_out, acts->d_proj_out);
  RETURN_IF_ERROR(
      qkv_.BackwardWeights(ctx, acts->ln1_out, Matrix(acts->d_qkv, acts->d_qkv.dim(-1))));
  ln1_.BackwardWeights(ctx, Matrix(acts->input, hidden_), acts->ln1, acts->d_ln1_out);
  *acts = BlockActivations();
  return absl::OkStatus();
}

}  // namespace trident::transformer
