#include "training/memory_estimate.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "tensor_parallel/param_count.h"
#include "topology/layer_split.h"
#include "topology/layout_validation.h"
#include "training/precision.h"
#include "training/recompute_policy.h"
#include "transformer/block.h"
#include "transformer/model_config.h"

namespace trident::training {
namespace {

constexpr int64_t kFloatBytes = 4;

// Micro-batches whose activations a stage holds at once under the schedule.
int64_t InFlightMicroBatches(const topology::ParallelLayout& layout) {
  const int64_t m = layout.num_micro_batches();
  const int64_t p = layout.pipeline_parallel();
  switch (layout.schedule()) {
    case topology::GPIPE:
      return m;
    case topology::INTERLEAVED_1F1B:
      return layout.virtual_pipeline_stages() * std::min(m, 2 * p);
    default:
      return std::min(m, p);
  }
}

}  // namespace

absl::StatusOr<MemoryEstimate> EstimateRankMemory(const TrainConfig& config) {
  const auto& model = config.model();
  const auto& layout = config.layout();
  const int tp = layout.tensor_parallel();
  const int pp = layout.pipeline_parallel();
  const int v = layout.virtual_pipeline_stages();
  const int64_t hidden = model.hidden_size();
  const int64_t ffn = transformer::FfnHiddenSize(model);
  const int64_t padded_vocab = topology::PaddedVocabSize(model.vocab_size(), tp);
  const int64_t seq = config.data().seq_length();
  const int64_t tokens = int64_t{layout.micro_batch_size()} * seq;  // N per micro-batch

  // The model's own stash per block (transformer/block.h) under the layout's
  // recomputation policy.
  const int64_t block_bytes = transformer::BlockStashBytes(
      BlockRecompute(layout.recompute()), layout.micro_batch_size(), seq, hidden, ffn,
      model.num_heads(), tp, layout.sequence_parallel());

  MemoryEstimate worst;
  for (int stage = 0; stage < pp; ++stage) {
    int layers = 0;
    for (int chunk = 0; chunk < v; ++chunk) {
      layers += topology::ChunkLayers(layout, model.num_layers(), stage, chunk).count;
    }
    tp::StageShape shape;
    shape.vocab_size = model.vocab_size();
    shape.padded_vocab = padded_vocab;
    shape.positions = model.context_length();
    shape.hidden = hidden;
    shape.ffn_hidden = ffn;
    shape.num_heads = model.num_heads();
    shape.num_layers = layers;
    shape.has_embedding = stage == 0;
    shape.has_head = stage == pp - 1;
    ASSIGN_OR_RETURN(const tp::ParameterCount count, tp::StageParameterCountPerRank(shape, tp));
    MemoryEstimate estimate;
    // Mixed precision: 16-bit values, fp32 gradients, and fp32 masters next
    // to the two moments as optimizer state. (Activations are counted at
    // 4 bytes in every precision: an over-count for 16-bit ones.)
    const int64_t value_bytes = static_cast<int64_t>(DTypeSize(ModelDType(config.precision())));
    estimate.parameter_bytes = value_bytes * count.total();
    estimate.gradient_bytes = kFloatBytes * count.total();
    const int64_t fp32_copies = config.precision() == FP32 ? 2 : 3;
    estimate.optimizer_state_bytes = fp32_copies * kFloatBytes * count.total();
    // ZeRO 1 and up shard the moments over dp (gradients and parameters are
    // counted whole: ZeRO 2's pool and ZeRO 1's shard buffer make their saving
    // model-dependent, and an estimate that refuses must not undercount).
    if (layout.zero_stage() >= 1) estimate.optimizer_state_bytes /= layout.data_parallel();
    estimate.activation_bytes = InFlightMicroBatches(layout) * layers * block_bytes;
    // Full recomputation rebuilds one block's whole stash during its backward.
    if (layout.recompute() == topology::Recompute::FULL && layers > 0) {
      estimate.activation_bytes += transformer::BlockStashBytes(
          transformer::Recompute::kNone, layout.micro_batch_size(), seq, hidden, ffn,
          model.num_heads(), tp, layout.sequence_parallel());
    }
    if (shape.has_head) estimate.activation_bytes += 2 * kFloatBytes * tokens * padded_vocab / tp;
    if (estimate.total() > worst.total()) worst = estimate;
  }
  return worst;
}

int64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t kib = 0;
    if (fields.size() >= 2 && fields[0] == "MemAvailable:" && absl::SimpleAtoi(fields[1], &kib)) {
      return kib * 1024;
    }
  }
  return 0;
}

absl::Status CheckMemoryFits(const MemoryEstimate& estimate, int ranks_in_process,
                             int64_t available_bytes) {
  const double needed = static_cast<double>(estimate.total()) * ranks_in_process;
  if (available_bytes <= 0 || needed <= static_cast<double>(available_bytes)) {
    return absl::OkStatus();
  }
  const auto gb = [](double bytes) { return bytes / 1e9; };
  return absl::FailedPreconditionError(absl::StrFormat(
      "this job needs about %.3g GB per rank (parameters %.3g, gradients %.3g, optimizer "
      "state %.3g, activations %.3g) x %d ranks in this process = %.3g GB, more than the "
      "%.3g GB of memory available (MemAvailable); use fewer or smaller ranks or micro-batches",
      gb(estimate.total()), gb(estimate.parameter_bytes), gb(estimate.gradient_bytes),
      gb(estimate.optimizer_state_bytes), gb(estimate.activation_bytes), ranks_in_process,
      gb(needed), gb(available_bytes)));
}

}  // namespace trident::training
