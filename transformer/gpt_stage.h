#ifndef TRIDENT_TRANSFORMER_GPT_STAGE_H_
#define TRIDENT_TRANSFORMER_GPT_STAGE_H_

// GptStage: one model chunk of a GPT — transformer blocks [first, first + n)
// plus the token/position embedding when it is the first chunk and the final
// LayerNorm, tied head and loss when it is the last. The serial model is the one
// stage holding everything (DESIGN.md rule 1); a pipeline stage holds one chunk
// (or several, with virtual stages), tensor-parallel over its tp group.
//
// Work is per micro-batch, named by an id: Forward stashes the activations
// that its backward needs; BackwardInput produces the gradient for the previous
// stage; BackwardWeights accumulates parameter gradients and frees the stash.
// Schedules may interleave micro-batches freely (1F1B, zero-bubble).

#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"
#include "tensor_parallel/vocab_parallel.h"
#include "transformer/block.h"
#include "transformer/layer_norm.h"
#include "transformer/model.pb.h"

namespace trident::transformer {

// Targets equal to this add no loss (PyTorch's default ignore index).
inline constexpr int32_t kIgnoreIndex = -100;

struct StageSpec {
  int first_layer = 0;
  int num_layers = 0;
  bool has_embedding = true;  // The first chunk of the model.
  bool has_head = true;       // The last chunk: final LayerNorm, tied head, loss.
  // Rows of the (tensor-parallel padded) vocabulary: topology::PaddedVocabSize.
  int64_t padded_vocab = 0;
  // Sequence parallelism (Korthikanti et al. 2022), tp > 1 only: activations
  // between blocks are split by tokens over the tp group (see block.h), and
  // every micro-batch's B * T must be a multiple of tp. The stage's input and
  // output are then this rank's row chunks too, so the activations crossing
  // pipeline stages are 1 / tp of the whole (as in Megatron).
  bool sequence_parallel = false;
  // Activation recomputation of every block (block.h): kFull keeps only each
  // block's input between the forward and the backward.
  Recompute recompute = Recompute::kNone;

  // The whole model as one stage.
  static StageSpec Whole(const GptConfig& config, int64_t padded_vocab);
};

class GptStage {
 public:
  // Checks the config and spec (errors name the field); parameters are zero
  // until Initialize. The stage's layers share one group over `tp`'s
  // communicator, sequence-parallel iff spec.sequence_parallel.
  static absl::StatusOr<std::unique_ptr<GptStage>> Create(const GptConfig& config,
                                                          const StageSpec& spec,
                                                          const tp::TpGroup& tp, Device device);

  // The serial model's values for this stage's parameters: a parameter element
  // depends only on (seed, name, global index), whatever the layout.
  void Initialize(const ExecContext& ctx, uint64_t seed);

  // Every parameter of the stage in a fixed order (embedding, blocks, final
  // LayerNorm, head's own copy of wte if this stage holds the head but not the
  // embedding). Pointers stay valid for the stage's life.
  ParameterList parameters();

  // Forward of micro-batch `mb`. `input`: tokens [B, T] int32 on the first
  // stage, the previous stage's output [B, T, hidden] otherwise. `targets`
  // [B, T] int32 on the last stage (ignored elsewhere). Returns the output
  // activation [B, T, hidden] (with sequence parallelism: this rank's row chunk
  // [B * T / tp, hidden]; its gradient comes back shaped the same), or an
  // undefined tensor on the last stage, whose output is the loss (Losses).
  absl::StatusOr<Tensor> Forward(const ExecContext& ctx, int mb, const Tensor& input,
                                 const Tensor& targets);
  // As above, with the micro-batch's shape given, for an input that does not
  // show it: with sequence parallelism a stage without the embedding takes
  // this rank's chunk [batch * seq / tp, hidden] of the previous stage's
  // output.
  absl::StatusOr<Tensor> Forward(const ExecContext& ctx, int mb, const Tensor& input,
                                 const Tensor& targets, int64_t batch, int64_t seq);

  // Last stage, after Forward(mb): the token losses of mb [B * T] fp32 (0 where
  // the target is ignored), left on the stage's device. Nothing is read back
  // here: a step sums its micro-batches' losses with one read-back
  // (ops::MultiTensorSum), one micro-batch with ops::Sum. The count of tokens
  // that count needs no device: the targets came from the host
  // (ops::CountTargets on them there).
  Tensor Losses(int mb) const;
  // Last stage, between Forward(mb) and BackwardInput(mb): this rank's logits
  // [B * T, local vocabulary] (its vocabulary shard, padding columns included).
  Tensor Logits(int mb) const;

  // Backward of mb for the input only. `grad_output` is dLoss/d(output) on
  // non-last stages; on the last stage it is ignored and the loss is
  // loss_scale * sum of token losses (loss_scale = 1 / tokens of the global
  // batch makes it the mean). Returns dLoss/d(input), undefined on the first
  // stage (token ids have no gradient).
  absl::StatusOr<Tensor> BackwardInput(const ExecContext& ctx, int mb, const Tensor& grad_output,
                                       float loss_scale);

  // Accumulates mb's parameter gradients and releases its stash.
  absl::Status BackwardWeights(const ExecContext& ctx, int mb);

  // Receives a layer's parameters, in the order BackwardWeights runs the
  // layers (head and final LayerNorm, the blocks from last to first, the
  // embedding).
  using LayerDoneCallback = std::function<void(const ParameterList&)>;
  // As above, calling `layer_starting` before each layer's weight gradients
  // are written (with every parameter whose grad the layer writes) and
  // `layer_done` after (with the parameters whose gradient the layer
  // finished). The data-parallel reducer learns from `layer_done` in the last
  // micro-batch's pass which gradients are final; ZeRO stage 2 binds gradient
  // buffers in `layer_starting`. On a stage holding both the embedding and
  // the head, wte (written by both) starts with the head and is done with the
  // embedding, its last use. Either callback may be null.
  absl::Status BackwardWeights(const ExecContext& ctx, int mb,
                               const LayerDoneCallback& layer_starting,
                               const LayerDoneCallback& layer_done);

  // ZeRO stage 3 (data_parallel/grad_buckets.h): parameter values exist only
  // while a layer uses them. Forward and BackwardInput bracket each layer's
  // use of its values (the embedding, each block, the head: final LayerNorm
  // and the tied wte) with `needed` (must make the values usable; its error
  // fails the pass) and `done`, and call `prefetch` with the next layer to run
  // (forward: the following one, input-gradient: the preceding block) right
  // after `needed`, before computing: each prefetch is followed by that
  // layer's `needed` in the same pass. BackwardWeights reads activations and
  // gradients only, so it asks for nothing. Each may be null.
  using ParameterHook = std::function<absl::Status(const ParameterList&)>;
  struct ParameterHooks {
    LayerDoneCallback prefetch;
    ParameterHook needed;
    LayerDoneCallback done;
  };
  void SetParameterHooks(ParameterHooks hooks) { param_hooks_ = std::move(hooks); }

  // The parameters of each layer whose values a pass uses, in forward order
  // (the hooks' units): the embedding, each block, the head.
  std::vector<ParameterList> Layers();

  // Sequence parallelism leaves the gradients of the LayerNorms (ln_1, ln_2 of
  // every block, ln_f) summed over this rank's tokens only. Call once per step,
  // after every micro-batch's BackwardWeights and before the data-parallel
  // reduction and the gradient norm: it all-reduces exactly those over tp.
  // Without sequence parallelism it does nothing. (The row-parallel biases and
  // wpe get their gradients from all-gathered output gradients: they are
  // whole on every rank already.)
  absl::Status ReduceSequenceParallelGradients();

  // The parameters ReduceSequenceParallelGradients sums over tp; empty
  // without sequence parallelism.
  ParameterList SequenceParallelPartials();

  // Drops mb's stash without a backward (evaluation, forward-only runs).
  void Discard(int mb) { stash_.erase(mb); }

  // Bytes of the distinct tensors the stash holds now (activations kept for
  // the backward, over every pending micro-batch): the stage's activation
  // memory.
  int64_t StashBytes() const;

  // The token embedding wte on the stage holding the embedding; null elsewhere.
  Parameter* token_embedding() { return embedding_ != nullptr ? &embedding_->wte() : nullptr; }

  // The head's own copy of the token embedding on a stage that holds the head
  // but not the embedding (pipeline parallelism with tied embeddings); null
  // otherwise. Its gradient must be summed with the embedding's over the
  // embedding group, and it must not count twice in the gradient norm.
  Parameter* head_embedding_copy() {
    return head_wte_ == &head_wte_copy_ ? &head_wte_copy_ : nullptr;
  }

  // Micro-batches whose BackwardWeights has not run yet.
  int pending_micro_batches() const { return static_cast<int>(stash_.size()); }

  const StageSpec& spec() const { return spec_; }
  const GptConfig& config() const { return config_; }

 private:
  struct HeadActivations {
    // With SP, input, ln_out, the stats and d_ln_out are row chunks [N / tp,
    // ...]: the vocab-parallel head gathers ln_out when it needs it whole.
    Tensor input;   // The last block's output [N, hidden].
    Tensor ln_out;  // [N, hidden]
    LayerNormStats ln;
    Tensor targets;    // [N]
    Tensor logits;     // [N, local vocab]; dLoss/dlogits after BackwardInput.
    Tensor logsumexp;  // [N]
    Tensor d_ln_out;  // Shaped like `input`.
    Tensor losses;     // [N] fp32 token losses, until Discard.
  };
  struct MicroBatch {
    Tensor tokens;  // First stage only.
    std::vector<BlockActivations> blocks;
    HeadActivations head;
    Tensor d_embedding_out;  // First stage: dLoss/d(embedding output), a chunk with SP.
    bool backward_input_done = false;
  };

  GptStage(const GptConfig& config, const StageSpec& spec, const tp::TpGroup& tp, Device device);

  absl::StatusOr<MicroBatch*> Find(int mb, const char* what);

  GptConfig config_;
  StageSpec spec_;
  tp::TpGroup tp_;
  tp::VocabShard vocab_shard_;
  std::unique_ptr<tp::VocabParallelEmbedding> embedding_;  // First stage.
  std::vector<std::unique_ptr<TransformerBlock>> blocks_;
  std::unique_ptr<LayerNorm> final_ln_;                 // Last stage.
  std::unique_ptr<tp::VocabParallelCrossEntropy> loss_;  // Last stage.
  // The head's weight: the embedding's wte when this stage has both, else a
  // copy owned here (tied across pipeline stages, kept equal by the trainer).
  Parameter* head_wte_ = nullptr;
  Parameter head_wte_copy_;
  absl::flat_hash_map<int, MicroBatch> stash_;
  ParameterHooks param_hooks_;
};

}  // namespace trident::transformer

#endif  // TRIDENT_TRANSFORMER_GPT_STAGE_H_
