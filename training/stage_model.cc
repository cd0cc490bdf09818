#include "training/stage_model.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ops/reduction.h"
#include "core/status_macros.h"
#include "topology/layer_split.h"
#include "training/recompute_policy.h"
#include "topology/layout_validation.h"

namespace trident::training {

absl::StatusOr<std::unique_ptr<StageModel>> StageModel::Create(
    const transformer::GptConfig& model, const topology::ParallelLayout& layout,
    int pipeline_stage, const tp::TpGroup& tp, const ExecContext& ctx) {
  const int p = layout.pipeline_parallel();
  const int v = layout.virtual_pipeline_stages();
  if (pipeline_stage < 0 || pipeline_stage >= p) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline stage ", pipeline_stage,
                                                   " is outside pipeline_parallel=", p));
  }
  std::unique_ptr<StageModel> stage(new StageModel(pipeline_stage, p, ctx));
  stage->hidden_ = model.hidden_size();
  stage->sequence_parallel_split_ = layout.sequence_parallel() ? layout.tensor_parallel() : 1;
  const int64_t padded_vocab = topology::PaddedVocabSize(model.vocab_size(), layout.tensor_parallel());
  for (int chunk = 0; chunk < v; ++chunk) {
    const topology::LayerRange layers =
        topology::ChunkLayers(layout, model.num_layers(), pipeline_stage, chunk);
    const int k = stage->model_chunk(chunk);
    transformer::StageSpec spec;
    spec.first_layer = layers.first;
    spec.num_layers = layers.count;
    spec.has_embedding = k == 0;
    spec.has_head = k == p * v - 1;
    spec.padded_vocab = padded_vocab;
    spec.sequence_parallel = layout.sequence_parallel();
    spec.recompute = BlockRecompute(layout.recompute());
    ASSIGN_OR_RETURN(std::unique_ptr<transformer::GptStage> gpt,
                     transformer::GptStage::Create(model, spec, tp, ctx.device()));
    stage->chunks_.push_back(std::move(gpt));
  }
  return stage;
}

void StageModel::Initialize(uint64_t seed) {
  for (auto& chunk : chunks_) chunk->Initialize(ctx_, seed);
}

ParameterList StageModel::parameters() {
  ParameterList params;
  for (auto& chunk : chunks_) {
    ParameterList own = chunk->parameters();
    params.insert(params.end(), own.begin(), own.end());
  }
  return params;
}

void StageModel::SetMicroBatches(const Tensor& inputs, const Tensor& targets,
                                 int micro_batch_size, float loss_scale, bool forward_only) {
  inputs_ = inputs;
  targets_ = targets;
  micro_batch_size_ = micro_batch_size;
  loss_scale_ = loss_scale;
  forward_only_ = forward_only;
  micro_batch_losses_.clear();
  peak_stash_bytes_ = 0;
  weight_passes_.assign(chunks_.size(), 0);
}

std::vector<ParameterList> StageModel::layers() {
  std::vector<ParameterList> layers;
  for (auto& chunk : chunks_) {
    std::vector<ParameterList> own = chunk->Layers();
    layers.insert(layers.end(), own.begin(), own.end());
  }
  return layers;
}

ParameterList StageModel::sequence_parallel_partials() {
  ParameterList params;
  for (auto& chunk : chunks_) {
    ParameterList own = chunk->SequenceParallelPartials();
    params.insert(params.end(), own.begin(), own.end());
  }
  return params;
}

absl::Status StageModel::ReduceSequenceParallelGradients() {
  for (auto& chunk : chunks_) RETURN_IF_ERROR(chunk->ReduceSequenceParallelGradients());
  return absl::OkStatus();
}

Tensor StageModel::MicroBatchRows(const Tensor& rows, int mb) const {
  return rows.Slice(0, static_cast<int64_t>(mb) * micro_batch_size_, micro_batch_size_);
}

std::vector<int64_t> StageModel::InputShape(int, int) const {
  const int64_t seq = inputs_.dim(1);
  // With sequence parallelism stages exchange this rank's row chunk of the
  // micro-batch's activation, as Megatron's p2p does: 1 / tp of the bytes.
  if (sequence_parallel_split_ > 1) {
    return {micro_batch_size_ * seq / sequence_parallel_split_, hidden_};
  }
  return {micro_batch_size_, seq, hidden_};
}

std::vector<int64_t> StageModel::OutputShape(int chunk, int mb) const {
  return InputShape(chunk, mb);
}

double StageModel::LossSum() const {
  // On the CPU the same bits as adding ops::Sum of each in turn.
  return ops::MultiTensorSum(ctx_, micro_batch_losses_);
}

absl::StatusOr<Tensor> StageModel::Forward(int chunk, int mb, const Tensor& input) {
  transformer::GptStage& gpt = *chunks_[chunk];
  const bool first = gpt.spec().has_embedding;
  const bool last = gpt.spec().has_head;
  const Tensor targets = last ? MicroBatchRows(targets_, mb) : Tensor();
  ASSIGN_OR_RETURN(Tensor output, gpt.Forward(ctx_, mb, first ? MicroBatchRows(inputs_, mb) : input,
                                              targets, micro_batch_size_, inputs_.dim(1)));
  if (last) micro_batch_losses_.push_back(gpt.Losses(mb));
  if (forward_only_) {
    gpt.Discard(mb);
  } else {
    int64_t stash = 0;
    for (const auto& c : chunks_) stash += c->StashBytes();
    peak_stash_bytes_ = std::max(peak_stash_bytes_, stash);
  }
  if (last) return Tensor();
  // Blocks work on [B * T, hidden] rows (a chunk of them with sequence
  // parallelism); the next chunk takes OutputShape.
  return output.Reshape(OutputShape(chunk, mb));
}

absl::StatusOr<Tensor> StageModel::BackwardInput(int chunk, int mb, const Tensor& grad_output) {
  transformer::GptStage& gpt = *chunks_[chunk];
  ASSIGN_OR_RETURN(Tensor grad_input, gpt.BackwardInput(ctx_, mb, grad_output, loss_scale_));
  if (gpt.spec().has_embedding) return Tensor();
  return grad_input.Reshape(InputShape(chunk, mb));
}

absl::Status StageModel::BackwardWeight(int chunk, int mb) {
  // Every micro-batch of the step passes through every chunk once, so the
  // chunk's m-th W is its last, whichever micro-batch it is.
  const int micro_batches = static_cast<int>(inputs_.dim(0) / micro_batch_size_);
  const bool last = ++weight_passes_[chunk] == micro_batches;
  const auto done = [this, last](const ParameterList& params) {
    if (hooks_.layer_done != nullptr) hooks_.layer_done(params);
    if (last && hooks_.gradients_final != nullptr) hooks_.gradients_final(params);
  };
  RETURN_IF_ERROR(chunks_[chunk]->BackwardWeights(ctx_, mb, hooks_.layer_starting, done));
  if (hooks_.after_weight_pass != nullptr) hooks_.after_weight_pass();
  return absl::OkStatus();
}

}  // namespace trident::training
