#include "transformer/gpt_stage.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/status_macros.h"
#include "transformer/model_config.h"

namespace trident::transformer {

StageSpec StageSpec::Whole(const GptConfig& config, int64_t padded_vocab) {
  StageSpec spec;
  spec.first_layer = 0;
  spec.num_layers = config.num_layers();
  spec.has_embedding = true;
  spec.has_head = true;
  spec.padded_vocab = padded_vocab;
  return spec;
}

namespace {

// The model's own rules are transformer::ValidateGptConfig's; the rules tying
// it to tensor_parallel (tp divides num_heads, hidden_size and the MLP width)
// are topology::ValidateLayout's, which every layout passes before a stage is
// built (the layers CHECK them as invariants). Here: the stage's own spec.
absl::Status ValidateStage(const GptConfig& config, const StageSpec& spec, int tp) {
  RETURN_IF_ERROR(ValidateGptConfig(config));
  if (spec.padded_vocab < config.vocab_size() || spec.padded_vocab % tp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "padded vocabulary ", spec.padded_vocab, " must be >= model.vocab_size=",
        config.vocab_size(), " and a multiple of tensor_parallel=", tp));
  }
  if (spec.num_layers < 0 || spec.first_layer < 0 ||
      spec.first_layer + spec.num_layers > config.num_layers()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage layers [", spec.first_layer, ", ", spec.first_layer + spec.num_layers,
        ") are not within model.num_layers=", config.num_layers()));
  }
  if (spec.has_embedding != (spec.first_layer == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the embedding belongs to the stage that starts at layer 0, not to one starting at ",
        spec.first_layer));
  }
  if (spec.has_head != (spec.first_layer + spec.num_layers == config.num_layers())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the head belongs to the stage that ends at layer ", config.num_layers(),
        ", not to one ending at ", spec.first_layer + spec.num_layers));
  }
  if (spec.sequence_parallel && tp == 1) {
    return absl::InvalidArgumentError(
        "sequence_parallel=true needs tensor_parallel > 1, got tensor_parallel=1 (it splits the "
        "tokens over the tensor-parallel group)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GptStage>> GptStage::Create(const GptConfig& config,
                                                           const StageSpec& spec,
                                                           const tp::TpGroup& tp,
                                                           Device device) {
  RETURN_IF_ERROR(ValidateStage(config, spec, tp.size()));
  return std::unique_ptr<GptStage>(new GptStage(config, spec, tp, device));
}

GptStage::GptStage(const GptConfig& config, const StageSpec& spec, const tp::TpGroup& tp,
                   Device device)
    : config_(config),
      spec_(spec),
      tp_(tp.communicator(), spec.sequence_parallel),
      vocab_shard_(tp::VocabShard::For(config.vocab_size(), spec.padded_vocab, tp)) {
  if (spec.has_embedding) {
    embedding_ = std::make_unique<tp::VocabParallelEmbedding>(vocab_shard_, config.context_length(),
                                                              config.hidden_size(), tp_, device);
  }
  for (int i = 0; i < spec.num_layers; ++i) {
    blocks_.push_back(
        std::make_unique<TransformerBlock>(config, spec.first_layer + i, tp_, device));
    blocks_.back()->set_recompute(spec.recompute);
  }
  if (spec.has_head) {
    final_ln_ = std::make_unique<LayerNorm>("ln_f", config.hidden_size(),
                                            config.layer_norm_epsilon(), device);
    loss_ = std::make_unique<tp::VocabParallelCrossEntropy>(vocab_shard_, tp_, kIgnoreIndex);
    if (embedding_ != nullptr) {
      head_wte_ = &embedding_->wte();
    } else {
      head_wte_copy_ = tp::MakeTokenEmbedding(vocab_shard_, config.hidden_size(), device);
      head_wte_ = &head_wte_copy_;
    }
  }
}

void GptStage::Initialize(const ExecContext& ctx, uint64_t seed) {
  if (embedding_ != nullptr) embedding_->Initialize(ctx, seed, config_.init_std());
  for (auto& block : blocks_) block->Initialize(ctx, seed);
  if (final_ln_ != nullptr) final_ln_->Initialize(ctx);
  if (head_wte_ == &head_wte_copy_) {
    tp::InitializeTokenEmbedding(ctx, vocab_shard_, seed, config_.init_std(), head_wte_copy_);
  }
}

ParameterList GptStage::parameters() {
  ParameterList params;
  if (embedding_ != nullptr) {
    params.push_back(&embedding_->wte());
    params.push_back(&embedding_->wpe());
  }
  for (auto& block : blocks_) block->AppendParameters(params);
  if (final_ln_ != nullptr) {
    params.push_back(&final_ln_->weight());
    params.push_back(&final_ln_->bias());
  }
  if (head_wte_ == &head_wte_copy_) params.push_back(&head_wte_copy_);
  return params;
}

int64_t GptStage::StashBytes() const {
  absl::flat_hash_set<const void*> seen;
  int64_t bytes = 0;
  const auto add = [&](const Tensor& t) {
    if (t.defined() && seen.insert(t.raw_data()).second) bytes += static_cast<int64_t>(t.nbytes());
  };
  for (const auto& [mb, m] : stash_) {
    add(m.tokens);
    add(m.d_embedding_out);
    for (const BlockActivations& b : m.blocks) {
      for (const Tensor* t : b.tensors()) add(*t);
    }
    const HeadActivations& h = m.head;
    for (const Tensor* t : {&h.input, &h.ln_out, &h.ln.mean, &h.ln.rstd, &h.targets, &h.logits,
                            &h.losses, &h.logsumexp, &h.d_ln_out}) {
      add(*t);
    }
  }
  return bytes;
}

absl::StatusOr<GptStage::MicroBatch*> GptStage::Find(int mb, const char* what) {
  auto it = stash_.find(mb);
  if (it == stash_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " of micro-batch ", mb, " before its forward"));
  }
  return &it->second;
}

absl::StatusOr<Tensor> GptStage::Forward(const ExecContext& ctx, int mb, const Tensor& input,
                                         const Tensor& targets) {
  TRIDENT_CHECK(input.ndim() >= 2)
      << "stage input must be [B, T, ...], got " << input.DebugString();
  return Forward(ctx, mb, input, targets, input.dim(0), input.dim(1));
}

absl::StatusOr<Tensor> GptStage::Forward(const ExecContext& ctx, int mb, const Tensor& input,
                                         const Tensor& targets, int64_t batch, int64_t seq) {
  if (stash_.contains(mb)) {
    return absl::FailedPreconditionError(
        absl::StrCat("forward of micro-batch ", mb, " twice without its backward"));
  }
  const int64_t hidden = config_.hidden_size();
  if (seq > config_.context_length()) {
    return absl::InvalidArgumentError(absl::StrCat("sequence length ", seq,
                                                   " exceeds model.context_length=",
                                                   config_.context_length()));
  }
  const int64_t n = batch * seq;
  if (tp_.sequence_parallel() && n % tp_.size() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence_parallel=true: the micro-batch's ", batch, " x ", seq, " = ", n,
        " tokens must be a multiple of tensor_parallel=", tp_.size(),
        " (each tp rank holds an equal chunk of them)"));
  }
  // This rank's rows of every activation between layers.
  const int64_t local_rows = tp_.LocalRows(n);
  // ZeRO 3: each layer's values are asked for before it runs, the next
  // layer's prefetched, and released after it.
  const std::vector<ParameterList> layers = Layers();
  int layer = 0;
  const auto enter = [&](int l) -> absl::Status {
    if (param_hooks_.needed == nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(param_hooks_.needed(layers[l]));
    if (l + 1 < static_cast<int>(layers.size()) && param_hooks_.prefetch != nullptr) {
      param_hooks_.prefetch(layers[l + 1]);
    }
    return absl::OkStatus();
  };
  const auto leave = [&](int l) {
    if (param_hooks_.done != nullptr) param_hooks_.done(layers[l]);
  };
  Tensor x;
  if (embedding_ != nullptr) {
    TRIDENT_CHECK(input.dtype() == DType::kInt32 && input.ndim() == 2 && input.dim(0) == batch &&
                  input.dim(1) == seq)
        << "the first stage takes token ids [" << batch << ", " << seq << "] int32, got "
        << input.DebugString();
    // Activations in the parameters' dtype (16-bit under mixed precision),
    // read once the layer's values are there (ZeRO 3 gathers them in enter).
    RETURN_IF_ERROR(enter(layer));
    const DType dtype = embedding_->wte().value.dtype();
    x = tp_.sequence_parallel() ? Tensor::Empty({local_rows, hidden}, dtype, ctx.allocator())
                                : Tensor::Empty({batch, seq, hidden}, dtype, ctx.allocator());
    RETURN_IF_ERROR(embedding_->Forward(ctx, input, x));
    leave(layer++);
  } else {
    TRIDENT_CHECK(input.dim(-1) == hidden && input.numel() == local_rows * hidden)
        << "stage input must hold " << local_rows << " rows of " << hidden << " (micro-batch "
        << batch << " x " << seq << "), got " << input.DebugString();
    x = input;
  }
  MicroBatch& m = stash_[mb];
  if (embedding_ != nullptr) m.tokens = input;
  m.blocks.resize(blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    RETURN_IF_ERROR(enter(layer));
    RETURN_IF_ERROR(blocks_[i]->Forward(ctx, x, batch, seq, &m.blocks[i]));
    leave(layer++);
    x = m.blocks[i].output;
  }
  if (!spec_.has_head) return x;
  RETURN_IF_ERROR(enter(layer));

  HeadActivations& h = m.head;
  h.input = x;
  // Final LayerNorm on this rank's rows; the head gathers them (with SP).
  h.ln_out = Tensor::Empty({local_rows, hidden}, x.dtype(), ctx.allocator());
  h.ln = final_ln_->Forward(ctx, x.Reshape({local_rows, hidden}), h.ln_out);
  TRIDENT_CHECK(targets.dtype() == DType::kInt32 && targets.numel() == n)
      << "the last stage takes targets [B, T] int32, got " << targets.DebugString();
  h.targets = targets.Reshape({n});
  // Logits and the loss stay fp32 under mixed precision (the softmax over the
  // vocabulary is where 16-bit rounding would hurt most).
  h.logits = Tensor::Empty({n, vocab_shard_.rows.size()}, DType::kFloat32, ctx.allocator());
  h.losses = Tensor::Empty({n}, DType::kFloat32, ctx.allocator());
  h.logsumexp = Tensor::Empty({n}, DType::kFloat32, ctx.allocator());
  RETURN_IF_ERROR(
      loss_->Forward(ctx, head_wte_->value, h.ln_out, h.targets, h.logits, h.losses, h.logsumexp));
  leave(layer);
  // The losses stay on the device (Losses): reading their sum here would wait
  // for the device once per micro-batch.
  return Tensor();
}

Tensor GptStage::Losses(int mb) const {
  auto it = stash_.find(mb);
  TRIDENT_CHECK(spec_.has_head && it != stash_.end()) << "no loss for micro-batch " << mb;
  return it->second.head.losses;
}

Tensor GptStage::Logits(int mb) const {
  auto it = stash_.find(mb);
  TRIDENT_CHECK(spec_.has_head && it != stash_.end() && !it->second.backward_input_done)
      << "no logits for micro-batch " << mb;
  return it->second.head.logits;
}

absl::StatusOr<Tensor> GptStage::BackwardInput(const ExecContext& ctx, int mb,
                                               const Tensor& grad_output, float loss_scale) {
  ASSIGN_OR_RETURN(MicroBatch * m, Find(mb, "backward"));
  if (m->backward_input_done) {
    return absl::FailedPreconditionError(
        absl::StrCat("backward of micro-batch ", mb, " twice"));
  }
  const int64_t hidden = config_.hidden_size();
  // ZeRO 3: the layers run from the last to the first block (the embedding's
  // input gradient is not computed), each prefetching the one before it.
  const std::vector<ParameterList> layers = Layers();
  const int first_block = embedding_ != nullptr ? 1 : 0;
  int layer = static_cast<int>(layers.size()) - 1;
  const auto enter = [&](int l) -> absl::Status {
    if (param_hooks_.needed == nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(param_hooks_.needed(layers[l]));
    if (l - 1 >= first_block && param_hooks_.prefetch != nullptr) {
      param_hooks_.prefetch(layers[l - 1]);
    }
    return absl::OkStatus();
  };
  const auto leave = [&](int l) {
    if (param_hooks_.done != nullptr) param_hooks_.done(layers[l]);
  };
  Tensor dy;
  if (spec_.has_head) {
    RETURN_IF_ERROR(enter(layer));
    HeadActivations& h = m->head;
    const int64_t local_rows = h.input.numel() / hidden;
    h.d_ln_out = Tensor::Empty({local_rows, hidden}, h.input.dtype(), ctx.allocator());
    RETURN_IF_ERROR(loss_->BackwardInput(ctx, head_wte_->value, h.targets, h.logsumexp, loss_scale,
                                         h.logits, h.d_ln_out));
    dy = Tensor::Empty(h.input.shape(), h.input.dtype(), ctx.allocator());
    final_ln_->BackwardInput(ctx, h.input.Reshape({local_rows, hidden}), h.ln, h.d_ln_out,
                             dy.Reshape({local_rows, hidden}));
    leave(layer--);
  } else {
    TRIDENT_CHECK(grad_output.defined() && grad_output.dim(-1) == hidden)
        << "stage output gradient must be shaped like the stage output, got "
        << grad_output.DebugString();
    dy = grad_output;
  }
  for (size_t i = blocks_.size(); i-- > 0;) {
    Tensor dx;
    RETURN_IF_ERROR(enter(layer));
    RETURN_IF_ERROR(blocks_[i]->BackwardInput(ctx, dy, &m->blocks[i], &dx));
    leave(layer--);
    dy = dx;
  }
  m->backward_input_done = true;
  if (embedding_ != nullptr) {
    m->d_embedding_out = dy;  // The embedding's BackwardWeights gathers a chunk.
    return Tensor();
  }
  return dy;
}

absl::Status GptStage::BackwardWeights(const ExecContext& ctx, int mb) {
  return BackwardWeights(ctx, mb, nullptr, nullptr);
}

absl::Status GptStage::BackwardWeights(const ExecContext& ctx, int mb,
                                       const LayerDoneCallback& layer_starting,
                                       const LayerDoneCallback& layer_done) {
  const auto starting = [&layer_starting](ParameterList params) {
    if (layer_starting != nullptr) layer_starting(params);
  };
  const auto report = [&layer_done](ParameterList params) {
    if (layer_done != nullptr) layer_done(params);
  };
  const bool hooked = layer_starting != nullptr || layer_done != nullptr;
  ASSIGN_OR_RETURN(MicroBatch * m, Find(mb, "weight gradient"));
  if (!m->backward_input_done) {
    return absl::FailedPreconditionError(absl::StrCat(
        "weight gradient of micro-batch ", mb, " before its input gradient"));
  }
  if (spec_.has_head) {
    HeadActivations& h = m->head;
    starting({&final_ln_->weight(), &final_ln_->bias(), head_wte_});
    RETURN_IF_ERROR(loss_->BackwardWeights(ctx, h.ln_out, h.logits, head_wte_->grad));
    final_ln_->BackwardWeights(ctx, h.input.Reshape(h.d_ln_out.shape()), h.ln, h.d_ln_out);
    ParameterList head = {&final_ln_->weight(), &final_ln_->bias()};
    if (head_wte_ == &head_wte_copy_) head.push_back(&head_wte_copy_);
    report(head);
  }
  for (size_t i = blocks_.size(); i-- > 0;) {
    ParameterList block;
    if (hooked) blocks_[i]->AppendParameters(block);
    starting(block);
    RETURN_IF_ERROR(blocks_[i]->BackwardWeights(ctx, &m->blocks[i]));
    report(block);
  }
  if (embedding_ != nullptr) {
    starting({&embedding_->wte(), &embedding_->wpe()});
    RETURN_IF_ERROR(embedding_->BackwardWeights(ctx, m->tokens, m->d_embedding_out));
    report({&embedding_->wte(), &embedding_->wpe()});
  }
  stash_.erase(mb);
  return absl::OkStatus();
}

std::vector<ParameterList> GptStage::Layers() {
  std::vector<ParameterList> layers;
  if (embedding_ != nullptr) layers.push_back({&embedding_->wte(), &embedding_->wpe()});
  for (auto& block : blocks_) {
    layers.emplace_back();
    block->AppendParameters(layers.back());
  }
  if (spec_.has_head) layers.push_back({&final_ln_->weight(), &final_ln_->bias(), head_wte_});
  return layers;
}

ParameterList GptStage::SequenceParallelPartials() {
  ParameterList partial;
  if (!tp_.sequence_parallel()) return partial;
  for (auto& block : blocks_) block->AppendSequenceParallelPartials(partial);
  if (final_ln_ != nullptr) {
    partial.push_back(&final_ln_->weight());
    partial.push_back(&final_ln_->bias());
  }
  return partial;
}

absl::Status GptStage::ReduceSequenceParallelGradients() {
  for (Parameter* p : SequenceParallelPartials()) RETURN_IF_ERROR(tp_.AllReduceSum(p->grad));
  return absl::OkStatus();
}

}  // namespace trident::transformer
