#ifndef TRIDENT_TRAINING_STAGE_MODEL_H_
#define TRIDENT_TRAINING_STAGE_MODEL_H_

// The GPT chunks of one pipeline stage, as the pipeline executor drives them
// (pipeline/stage.h). Stage s holds model chunks s, s + p, ... (one per
// virtual stage, Megatron's interleaving; topology/layer_split.h says which
// layers each holds); each chunk is a GptStage, tensor-parallel over the
// rank's tp group. The serial model is the one stage holding one chunk with
// every layer (DESIGN.md rule 1).
//
// Per step the trainer hands it the replica's micro-batches (tokens and
// targets), runs the schedule, and reads the loss from the last stage.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "pipeline/stage.h"
#include "tensor_parallel/tp_group.h"
#include "topology/layout.pb.h"
#include "transformer/gpt_stage.h"
#include "transformer/model.pb.h"

namespace trident::training {

class StageModel : public pipeline::PipelineStage {
 public:
  // The chunks of `pipeline_stage` under `layout` (validated). `ctx` must
  // outlive the model.
  static absl::StatusOr<std::unique_ptr<StageModel>> Create(const transformer::GptConfig& model,
                                                            const topology::ParallelLayout& layout,
                                                            int pipeline_stage,
                                                            const tp::TpGroup& tp,
                                                            const ExecContext& ctx);

  // The serial model's initial values (each chunk initialises its own part).
  void Initialize(uint64_t seed);

  // Every parameter, chunk by chunk in local chunk order.
  ParameterList parameters();
  // The parameters of local chunk `chunk`.
  ParameterList chunk_parameters(int chunk) { return chunks_[chunk]->parameters(); }
  int num_chunks() const { return static_cast<int>(chunks_.size()); }
  // The parameters of each layer (what one weight pass writes: embedding,
  // each block, head), chunk by chunk in local chunk order.
  std::vector<ParameterList> layers();
  // Transformer layers in local chunk `chunk`.
  int chunk_layers(int chunk) const { return chunks_[chunk]->spec().num_layers; }
  // The index of local chunk `chunk` in the whole model (chunk * p + stage).
  int model_chunk(int chunk) const { return chunk * num_stages_ + stage_; }
  bool holds_embedding() const { return chunks_.front()->spec().has_embedding; }
  bool holds_head() const { return chunks_.back()->spec().has_head; }
  // The last stage's copy of the tied token embedding; null on other stages
  // and when the embedding and the head share one stage.
  Parameter* head_embedding_copy() { return chunks_.back()->head_embedding_copy(); }
  // This stage's share of the tied token embedding: wte on the first stage,
  // the head's copy on the last (when they differ); null on other stages.
  Parameter* tied_embedding() {
    return holds_embedding() ? chunks_.front()->token_embedding() : head_embedding_copy();
  }

  // The step's micro-batches: `inputs` and `targets` are [m * micro_batch_size,
  // T] int32; micro-batch i is rows [i * micro_batch_size, (i + 1) *
  // micro_batch_size). `loss_scale` multiplies the summed token losses in the
  // backward (1 / tokens of the global batch). With `forward_only`, every
  // chunk drops a micro-batch's activations right after its forward
  // (evaluation). Resets LossSum() and the stash peak.
  void SetMicroBatches(const Tensor& inputs, const Tensor& targets, int micro_batch_size,
                       float loss_scale, bool forward_only);

  // Last stage: the sum of the token losses of the micro-batches run since
  // SetMicroBatches, each micro-batch's sum (ops::Sum) added in the order their
  // forwards ran (micro-batch order in every schedule). 0 on other stages.
  // The losses wait on the device until this is called: one read-back (on a
  // GPU, one host sync) however many micro-batches ran; read it once a step.
  double LossSum() const;
  // The most activation bytes this stage's chunks held at once since
  // SetMicroBatches (GptStage::StashBytes, sampled after every forward).
  int64_t peak_stash_bytes() const { return peak_stash_bytes_; }

  // After the backward of every micro-batch: with sequence parallelism, sums
  // the LayerNorm gradients over tp (GptStage::ReduceSequenceParallelGradients).
  absl::Status ReduceSequenceParallelGradients();

  // The parameters whose gradients ReduceSequenceParallelGradients sums over
  // tp (empty without sequence parallelism).
  ParameterList sequence_parallel_partials();

  // The data-parallel reducer's hooks; any may be null.
  struct GradientHooks {
    // During the weight-gradient pass (W) of a chunk's LAST micro-batch of
    // the step (by count: zero-bubble schedules run W late and in any order),
    // the parameters of each layer as soon as that layer's pass is done:
    // their gradients will not change again in this step's backward.
    transformer::GptStage::LayerDoneCallback gradients_final;
    // In every W, before and after each layer writes its weight gradients
    // (GptStage::BackwardWeights; ZeRO stage 2 binds and reduces per
    // micro-batch).
    transformer::GptStage::LayerDoneCallback layer_starting;
    transformer::GptStage::LayerDoneCallback layer_done;
    // After every W: a point where pending communication can be progressed.
    std::function<void()> after_weight_pass;
  };
  void SetGradientHooks(GradientHooks hooks) { hooks_ = std::move(hooks); }
  // ZeRO stage 3: every chunk asks for its layers' values through these
  // (transformer::GptStage::ParameterHooks).
  void SetParameterHooks(const transformer::GptStage::ParameterHooks& hooks) {
    for (auto& chunk : chunks_) chunk->SetParameterHooks(hooks);
  }

  // Mixed precision: the dtype of the activations (and their gradients) that
  // cross pipeline stages; the parameters' values must have been converted to
  // it (AdamW::KeepFp32Masters). The chunks follow their inputs' dtype.
  void SetActivationDType(DType dtype) { activation_dtype_ = dtype; }

  // pipeline::PipelineStage.
  DType ActivationDType() const override { return activation_dtype_; }
  std::vector<int64_t> InputShape(int chunk, int mb) const override;
  std::vector<int64_t> OutputShape(int chunk, int mb) const override;
  absl::StatusOr<Tensor> Forward(int chunk, int mb, const Tensor& input) override;
  absl::StatusOr<Tensor> BackwardInput(int chunk, int mb, const Tensor& grad_output) override;
  absl::Status BackwardWeight(int chunk, int mb) override;

 private:
  StageModel(int stage, int num_stages, const ExecContext& ctx)
      : stage_(stage), num_stages_(num_stages), ctx_(ctx) {}

  Tensor MicroBatchRows(const Tensor& rows, int mb) const;

  const int stage_;
  const int num_stages_;
  const ExecContext& ctx_;
  std::vector<std::unique_ptr<transformer::GptStage>> chunks_;
  int64_t hidden_ = 0;
  // Into how many row chunks the activations between stages are split: tp with
  // sequence parallelism, else 1.
  int sequence_parallel_split_ = 1;
  DType activation_dtype_ = DType::kFloat32;

  Tensor inputs_;
  Tensor targets_;
  int micro_batch_size_ = 0;
  float loss_scale_ = 0;
  bool forward_only_ = false;
  // The last stage's token losses of each micro-batch run since
  // SetMicroBatches, in forward order (GptStage::Losses).
  std::vector<Tensor> micro_batch_losses_;
  int64_t peak_stash_bytes_ = 0;
  // W passes run per local chunk since SetMicroBatches.
  std::vector<int> weight_passes_;
  GradientHooks hooks_;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_STAGE_MODEL_H_
