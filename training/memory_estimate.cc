#include "training/memory_estimate.h"

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

int64_t CeilDiv(int64_t n, int64_t d) { return (n + d - 1) / d; }

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

// One layer of a stage, as one tensor-parallel rank holds it: what its weight
// pass writes (embedding, a block or the head).
struct StageLayer {
  int64_t elements = 0;
  // Of which ZeRO 2-3 keep in a full gradient buffer of their own
  // (data_parallel/grad_buckets.h): the tied embedding (written by the head's
  // and the embedding's passes, or summed over the embedding group with a
  // pipeline) and, with sequence parallelism, the LayerNorm weights summed
  // over tp after the backward. The rest goes through the pool.
  int64_t kept_full = 0;
  int64_t pooled() const { return elements - kept_full; }
};

// The layers of a stage's chunks, chunk by chunk, each in order of use.
std::vector<std::vector<StageLayer>> StageLayers(const topology::ParallelLayout& layout,
                                                 int num_layers, int stage,
                                                 int64_t block_elements, int64_t wte_elements,
                                                 int64_t wpe_elements, int64_t hidden) {
  const int pp = layout.pipeline_parallel();
  const int v = layout.virtual_pipeline_stages();
  const bool sp = layout.sequence_parallel();
  std::vector<std::vector<StageLayer>> chunks;
  for (int chunk = 0; chunk < v; ++chunk) {
    std::vector<StageLayer>& layers = chunks.emplace_back();
    if (stage == 0 && chunk == 0) {
      layers.push_back({.elements = wte_elements + wpe_elements, .kept_full = wte_elements});
    }
    const int blocks = topology::ChunkLayers(layout, num_layers, stage, chunk).count;
    for (int b = 0; b < blocks; ++b) {
      layers.push_back({.elements = block_elements, .kept_full = sp ? 4 * hidden : 0});
    }
    if (stage == pp - 1 && chunk == v - 1) {
      // ln_f and the tied embedding (wte itself on a single stage, where it
      // is also the embedding layer's, else the head's copy): kept in full.
      layers.push_back({.elements = 2 * hidden + wte_elements,
                        .kept_full = (sp ? 2 * hidden : 0) + wte_elements});
    }
  }
  return chunks;
}

// The largest pooled gradient bucket: layers packed in reverse order of use
// up to `capacity` elements, never split (GradientReducer's Fill).
int64_t LargestPooledBucket(const std::vector<std::vector<StageLayer>>& chunks, int64_t capacity) {
  int64_t largest = 0, size = 0;
  bool open = false;
  for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
    for (auto layer = chunk->rbegin(); layer != chunk->rend(); ++layer) {
      const int64_t n = layer->pooled();
      if (n == 0) continue;
      if (!open || (size > 0 && size + n > capacity)) {
        size = 0;
        open = true;
      }
      size += n;
      largest = std::max(largest, size);
    }
  }
  return largest;
}

// The estimate of the pipeline stage in [first, last] whose total is largest.
absl::StatusOr<MemoryEstimate> WorstStage(const TrainConfig& config, int first, int last) {
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
  for (int stage = first; stage <= last; ++stage) {
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
    tp::StageShape one_block = shape;
    one_block.num_layers = 1;
    one_block.has_embedding = false;
    one_block.has_head = false;
    ASSIGN_OR_RETURN(const tp::ParameterCount block, tp::StageParameterCountPerRank(one_block, tp));
    const int64_t elements = count.total();
    const int64_t wte = padded_vocab / tp * hidden;
    const std::vector<std::vector<StageLayer>> chunks =
        StageLayers(layout, model.num_layers(), stage, block.total(), wte,
                    model.context_length() * hidden, hidden);
    MemoryEstimate estimate;
    // Mixed precision: 16-bit values, fp32 gradients, and fp32 masters next
    // to the two moments as optimizer state. (Activations are counted at
    // 4 bytes in every precision: an over-count for 16-bit ones.)
    const int64_t value_bytes = static_cast<int64_t>(DTypeSize(ModelDType(config.precision())));
    const int64_t fp32_copies = config.precision() == FP32 ? 2 : 3;
    estimate.parameter_bytes = value_bytes * elements;
    estimate.gradient_bytes = kFloatBytes * elements;
    estimate.optimizer_state_bytes = fp32_copies * kFloatBytes * elements;
    // ZeRO shards over dp (a no-op at dp 1), as data_parallel/grad_buckets.h
    // implements it; padding to a multiple of dp per bucket not counted.
    const int64_t dp = layout.data_parallel();
    const int zero = dp > 1 ? layout.zero_stage() : 0;
    // Stage 1: the moments (and masters) of this rank's windows; the gradient
    // buckets are reduce-scattered in place, so gradients stay whole.
    if (zero >= 1) {
      estimate.optimizer_state_bytes = fp32_copies * kFloatBytes * CeilDiv(elements, dp);
    }
    if (zero >= 2) {
      // Stage 2: the pooled gradients' shards, the buffers kept in full, and
      // kGradientPoolBuffers (2) buffers of the largest pooled bucket, whose
      // size is capped at the largest layer (training/step_runner.cc).
      int64_t kept_full = 0, largest_layer = 0;
      for (const auto& chunk : chunks) {
        for (const StageLayer& layer : chunk) {
          kept_full += layer.kept_full;
          largest_layer = std::max(largest_layer, layer.elements);
        }
      }
      if (stage == 0 && stage == pp - 1) kept_full -= wte;  // one wte in two layers
      const int64_t capacity = std::min<int64_t>(
          static_cast<int64_t>(double{layout.grad_bucket_mb()} * (1 << 20) / kFloatBytes),
          largest_layer);
      estimate.gradient_bytes =
          kFloatBytes * (CeilDiv(elements - kept_full, dp) + kept_full +
                         2 * LargestPooledBucket(chunks, std::max<int64_t>(1, capacity)));
    }
    if (zero == 3) {
      // Stage 3: a window of every value, plus a layer and the next one
      // (prefetched) gathered at once.
      int64_t gathered = 0;
      for (const auto& chunk : chunks) {
        for (size_t l = 0; l < chunk.size(); ++l) {
          const int64_t next = l + 1 < chunk.size() ? chunk[l + 1].elements : 0;
          gathered = std::max(gathered, chunk[l].elements + next);
        }
      }
      estimate.parameter_bytes = value_bytes * (CeilDiv(elements, dp) + gathered);
    }
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

}  // namespace

absl::StatusOr<MemoryEstimate> EstimateRankMemory(const TrainConfig& config) {
  return WorstStage(config, 0, config.layout().pipeline_parallel() - 1);
}

absl::StatusOr<MemoryEstimate> EstimateStageMemory(const TrainConfig& config, int stage) {
  const int pp = config.layout().pipeline_parallel();
  if (stage < 0 || stage >= pp) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline stage ", stage,
                                                   " is not in [0, pipeline_parallel=", pp, ")"));
  }
  return WorstStage(config, stage, stage);
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
