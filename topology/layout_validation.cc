#include "topology/layout_validation.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/check.h"
#include "core/status_macros.h"
#include "topology/layout_names.h"
#include "topology/process_grid.h"

namespace trident::topology {
namespace {

absl::Status Positive(absl::string_view field, int64_t value, absl::string_view why = "") {
  if (value >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, "=", value, " must be positive", why));
}

absl::Status CheckSizes(const ParallelLayout& l) {
  RETURN_IF_ERROR(Positive("tensor_parallel", l.tensor_parallel()));
  RETURN_IF_ERROR(Positive("pipeline_parallel", l.pipeline_parallel()));
  RETURN_IF_ERROR(Positive("data_parallel", l.data_parallel()));
  RETURN_IF_ERROR(Positive("virtual_pipeline_stages", l.virtual_pipeline_stages()));
  RETURN_IF_ERROR(Positive("micro_batch_size", l.micro_batch_size()));
  return Positive("num_micro_batches", l.num_micro_batches());
}

absl::Status CheckModel(const ModelDimensions& m) {
  constexpr absl::string_view kWhy = " (model dimension)";
  RETURN_IF_ERROR(Positive("num_layers", m.num_layers, kWhy));
  RETURN_IF_ERROR(Positive("num_heads", m.num_heads, kWhy));
  RETURN_IF_ERROR(Positive("hidden_size", m.hidden_size, kWhy));
  RETURN_IF_ERROR(Positive("ffn_hidden_size", m.ffn_hidden_size, kWhy));
  RETURN_IF_ERROR(Positive("vocab_size", m.vocab_size, kWhy));
  if (m.seq_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("seq_length=", m.seq_length, " must be positive, or 0 when unknown"));
  }
  return absl::OkStatus();
}

absl::Status TensorParallelDivides(int tp, absl::string_view field, int64_t value,
                                   absl::string_view why) {
  if (value % tp == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("tensor_parallel=", tp, " must divide ", field, "=", value, " (", why, ")"));
}

absl::Status CheckTensorParallel(const ParallelLayout& l, const ModelDimensions& m) {
  const int tp = l.tensor_parallel();
  RETURN_IF_ERROR(
      TensorParallelDivides(tp, "num_heads", m.num_heads, "each tp rank owns whole attention heads"));
  RETURN_IF_ERROR(TensorParallelDivides(
      tp, "hidden_size", m.hidden_size,
      "the attention projections split the hidden dimension evenly across tp ranks"));
  return TensorParallelDivides(
      tp, "ffn_hidden_size", m.ffn_hidden_size,
      "the MLP's first linear layer is split by columns and its second by rows");
}

absl::Status CheckLayerSplit(const ParallelLayout& l, const ModelDimensions& m) {
  const int64_t chunks = int64_t{l.pipeline_parallel()} * l.virtual_pipeline_stages();
  const std::string chunks_text =
      absl::StrCat("pipeline_parallel=", l.pipeline_parallel(), " x virtual_pipeline_stages=",
                   l.virtual_pipeline_stages(), " = ", chunks);
  if (l.layers_per_stage_size() == 0) {
    if (m.num_layers % chunks == 0) return absl::OkStatus();
    if (chunks > m.num_layers) {  // No split exists: every chunk needs a layer.
      return absl::InvalidArgumentError(absl::StrCat(
          chunks_text, " stage chunks exceed num_layers=", m.num_layers,
          " (every stage chunk holds at least one layer)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        chunks_text, " must divide num_layers=", m.num_layers,
        " (each stage chunk gets an equal number of layers; list an uneven split in "
        "layers_per_stage)"));
  }
  if (l.layers_per_stage_size() != chunks) {
    return absl::InvalidArgumentError(absl::StrCat("layers_per_stage has ",
                                                   l.layers_per_stage_size(),
                                                   " entries but needs ", chunks_text,
                                                   " (one per stage chunk)"));
  }
  int64_t sum = 0;
  for (int i = 0; i < l.layers_per_stage_size(); ++i) {
    if (l.layers_per_stage(i) < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("layers_per_stage[", i, "]=", l.layers_per_stage(i),
                       " must be at least 1 (every stage chunk holds a layer)"));
    }
    sum += l.layers_per_stage(i);
  }
  if (sum != m.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layers_per_stage sums to ", sum,
                                                   " but num_layers=", m.num_layers,
                                                   " (the split must cover every layer once)"));
  }
  return absl::OkStatus();
}

absl::Status CheckSchedule(const ParallelLayout& l) {
  const bool interleaved = l.schedule() == INTERLEAVED_1F1B;
  if (l.virtual_pipeline_stages() > 1 && !interleaved) {
    return absl::InvalidArgumentError(absl::StrCat(
        "virtual_pipeline_stages=", l.virtual_pipeline_stages(), " needs schedule ",
        ScheduleName(INTERLEAVED_1F1B), ", not ", ScheduleName(l.schedule()),
        " (only the interleaved schedule runs several model chunks per stage)"));
  }
  if (interleaved && l.pipeline_parallel() > 1 &&
      l.num_micro_batches() % l.pipeline_parallel() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_micro_batches=", l.num_micro_batches(), " must be a multiple of pipeline_parallel=",
        l.pipeline_parallel(), " with schedule ", ScheduleName(INTERLEAVED_1F1B),
        " (micro-batches enter the virtual stages in groups of pipeline_parallel)"));
  }
  if (interleaved && l.pipeline_parallel() > 1 && l.virtual_pipeline_stages() == 1) {
    // Would run plain 1F1B with the interleaved schedule's bookkeeping.
    return absl::InvalidArgumentError(absl::StrCat(
        "schedule ", ScheduleName(INTERLEAVED_1F1B), " with pipeline_parallel=",
        l.pipeline_parallel(), " needs virtual_pipeline_stages >= 2, not 1 (add "
        "--virtual_stages=2 or more, or use schedule 1f1b)"));
  }
  return absl::OkStatus();
}

absl::Status CheckGlobalBatch(const ParallelLayout& l) {
  const int64_t global =
      int64_t{l.micro_batch_size()} * l.num_micro_batches() * l.data_parallel();
  if (l.global_batch_size() == 0 || l.global_batch_size() == global) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "global_batch_size=", l.global_batch_size(), " must equal micro_batch_size=",
      l.micro_batch_size(), " x num_micro_batches=", l.num_micro_batches(),
      " x data_parallel=", l.data_parallel(), " = ", global,
      " (leave num_micro_batches unset to derive it from global_batch_size)"));
}

}  // namespace

absl::Status DeriveMicroBatches(ParallelLayout* layout) {
  const ParallelLayout& l = *layout;
  if (l.global_batch_size() <= 0 || l.has_num_micro_batches()) return absl::OkStatus();
  const int64_t per_micro_batch_step = int64_t{l.micro_batch_size()} * l.data_parallel();
  if (per_micro_batch_step < 1 || l.global_batch_size() % per_micro_batch_step != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "global_batch_size=", l.global_batch_size(), " is not a multiple of micro_batch_size=",
        l.micro_batch_size(), " x data_parallel=", l.data_parallel(), " = ",
        per_micro_batch_step, " (num_micro_batches = global_batch_size / (micro_batch_size x "
        "data_parallel) must be a whole number)"));
  }
  layout->set_num_micro_batches(static_cast<int32_t>(l.global_batch_size() / per_micro_batch_step));
  return absl::OkStatus();
}

namespace {

absl::Status CheckSequenceParallel(const ParallelLayout& l, const ModelDimensions& m) {
  if (!l.sequence_parallel()) return absl::OkStatus();
  if (l.tensor_parallel() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequence_parallel=true needs tensor_parallel > 1, got tensor_parallel=",
        l.tensor_parallel(), " (it splits activations along the sequence across the tp group)"));
  }
  if (m.seq_length > 0 && m.seq_length % l.tensor_parallel() != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor_parallel=", l.tensor_parallel(), " must divide seq_length=", m.seq_length,
        " with sequence_parallel=true (each tp rank holds an equal slice of the sequence)"));
  }
  return absl::OkStatus();
}

absl::Status CheckZero(const ParallelLayout& l) {
  if (!(l.zero_stage() >= 0 && l.zero_stage() <= 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "zero_stage=", l.zero_stage(),
        " must be in 0..3 (0 off, 1 shards optimizer state, 2 also gradients, 3 also parameters)"));
  }
  // ZeRO-Offload moves the rank's ZeRO shard of the optimizer state to the
  // host (as DeepSpeed's offload_optimizer, a ZeRO stage 1-3 option): each
  // rank's host memory and host AdamW work then shrink with dp.
  if (l.cpu_offload() && l.zero_stage() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cpu_offload=true needs zero_stage >= 1, got zero_stage=", l.zero_stage(),
        " (what is offloaded is the rank's ZeRO shard of the optimizer state; with "
        "data_parallel=1 that is the whole state)"));
  }
  return absl::OkStatus();
}

// Why a compressed mode cannot run under ZeRO: it is written as an
// all-reduce of whole buckets, where ZeRO reduce-scatters into shards.
std::string WhyNotWithZero(GradientCompression::Method method) {
  switch (method) {
    case GradientCompression::TOPK:
      return "Top-K sums every rank's picks with an all-gather into a dense bucket and keeps a "
             "full-bucket error-feedback residual per rank; routing picks to shard owners is not "
             "built";
    case GradientCompression::POWERSGD:
      return "PowerSGD factors whole 2-D gradients, which ZeRO's windows cut across, and keeps a "
             "full-bucket error-feedback residual per rank";
    case GradientCompression::INT8:
      return "int8 is carried by a ring all-reduce of whole buckets with a full-bucket "
             "error-feedback residual per rank, where ZeRO reduce-scatters into shards";
    default:
      return "16-bit transport is carried by a ring all-reduce of whole buckets, where ZeRO "
             "reduce-scatters into shards";
  }
}

// dp_allreduce, gradient compression and their parameters
// (data_parallel/compression/gradient_sync.h).
absl::Status CheckGradientSync(const ParallelLayout& l) {
  const GradientCompression::Method method = l.gradient_compression();
  const std::string mode = absl::StrCat("gradient_compression=", CompressionName(method));
  if (method != GradientCompression::NONE && l.zero_stage() >= 1) {
    return absl::InvalidArgumentError(absl::StrCat(mode, " needs zero_stage=0, got zero_stage=",
                                                   l.zero_stage(), " (", WhyNotWithZero(method),
                                                   ")"));
  }
  const DpAllReduce::Algorithm algorithm = l.dp_allreduce();
  if (algorithm != DpAllReduce::NATIVE) {
    const std::string flag = absl::StrCat("dp_allreduce=", DpAllReduceName(algorithm));
    if (l.zero_stage() >= 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " needs zero_stage=0, got zero_stage=", l.zero_stage(),
          " (it chooses how buckets are all-reduced; ZeRO reduce-scatters them instead)"));
    }
    if (method == GradientCompression::TOPK) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " does not combine with ", mode,
          " (Top-K all-gathers sparse picks; no all-reduce runs): use dp_allreduce=native"));
    }
    if (method != GradientCompression::NONE && method != GradientCompression::POWERSGD &&
        algorithm != DpAllReduce::RING) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " does not combine with ", mode,
          " (compressed values travel a ring that adds in fp32 at each hop): use "
          "dp_allreduce=ring or native"));
    }
  }
  if (l.topk_adaptive()) {
    if (method != GradientCompression::TOPK) {
      return absl::InvalidArgumentError(
          absl::StrCat("topk_adaptive=true needs gradient_compression=topk, got ", mode));
    }
    if (!(l.topk_min_ratio() > 0.0f && l.topk_min_ratio() <= l.topk_max_ratio() &&
          l.topk_max_ratio() <= 1.0f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topk_min_ratio=", l.topk_min_ratio(), " and topk_max_ratio=", l.topk_max_ratio(),
          " must satisfy 0 < topk_min_ratio <= topk_max_ratio <= 1 with topk_adaptive=true"));
    }
    if (!(l.topk_sparsity_threshold() > 0.0f && l.topk_sparsity_threshold() < 1.0f)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topk_sparsity_threshold=", l.topk_sparsity_threshold(),
          " must be in (0, 1) (a fraction of the bucket's largest magnitude)"));
    }
    if (!(l.topk_sparsity_ema() >= 0.0f && l.topk_sparsity_ema() < 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("topk_sparsity_ema=", l.topk_sparsity_ema(),
                       " must be in [0, 1) (the weight of the past in the moving average)"));
    }
  }
  if (method == GradientCompression::POWERSGD) {
    if (l.powersgd_rank() < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "powersgd_rank=", l.powersgd_rank(), " must be >= 1 with ", mode,
          " (the rank of each 2-D gradient's approximation)"));
    }
    if (l.powersgd_start_step() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("powersgd_start_step=", l.powersgd_start_step(),
                       " must be >= 0 (steps before it are summed uncompressed)"));
    }
  }
  if ((method == GradientCompression::BF16 || method == GradientCompression::FP16) &&
      l.compression_scaling() == GradientCompression::STATIC) {
    const float scale = l.compression_static_scale();
    int exponent = 0;
    if (!(scale > 0.0f) || std::isinf(scale) || std::frexp(scale, &exponent) != 0.5f) {
      return absl::InvalidArgumentError(
          absl::StrCat("compression_static_scale=", scale, " must be a positive power of two "
                       "with ", mode, " and compression_scaling=static (so that scaling is exact)"));
    }
  }
  return absl::OkStatus();
}

// dp_sync and local_sgd_steps (data_parallel/sync_modes/replica_sync.h).
absl::Status CheckReplicaSync(const ParallelLayout& l) {
  const DpSync::Mode mode = l.dp_sync();
  const std::string flag = absl::StrCat("dp_sync=", DpSyncName(mode));
  if (mode == DpSync::LOCAL_SGD && l.local_sgd_steps() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("local_sgd_steps=", l.local_sgd_steps(), " must be >= 1 with ", flag,
                     " (the steps between parameter averages)"));
  }
  if (mode != DpSync::LOCAL_SGD && l.has_local_sgd_steps()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local_sgd_steps=", l.local_sgd_steps(), " needs dp_sync=local_sgd, got ", flag));
  }
  if (mode != DpSync::PS && (l.has_ps_servers() || l.has_ps_staleness())) {
    return absl::InvalidArgumentError(absl::StrCat(
        l.has_ps_servers() ? absl::StrCat("ps_servers=", l.ps_servers())
                           : absl::StrCat("ps_staleness=", l.ps_staleness()),
        " needs dp_sync=ps, got ", flag));
  }
  if (mode == DpSync::PS) {
    if (l.ps_servers() < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ps_servers=", l.ps_servers(),
          " must be >= 1 with dp_sync=ps (the ranks, beyond the grid, that hold the parameters)"));
    }
    if (l.ps_staleness() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ps_staleness=", l.ps_staleness(),
                       " must be >= 0 with dp_sync=ps (the steps a worker may run ahead of the "
                       "slowest)"));
    }
    if (l.tensor_parallel() > 1 || l.pipeline_parallel() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " needs tensor_parallel=1 and pipeline_parallel=1, got ", l.tensor_parallel(),
          " x ", l.pipeline_parallel(),
          " (a worker pushes one whole flat gradient; model-parallel shards are not routed to "
          "servers)"));
    }
  }
  if (mode == DpSync::SYNC) return absl::OkStatus();
  if (l.zero_stage() >= 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " needs zero_stage=0, got zero_stage=", l.zero_stage(),
        " (each replica steps alone, so it needs its whole optimizer state, which ZeRO shards "
        "across the replicas)"));
  }
  if (l.gradient_compression() != GradientCompression::NONE) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " does not combine with gradient_compression=",
        CompressionName(l.gradient_compression()),
        " (replicas do not sum gradients, so there is nothing to compress)"));
  }
  if ((mode == DpSync::GOSSIP || mode == DpSync::PS) && l.dp_allreduce() != DpAllReduce::NATIVE) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " does not combine with dp_allreduce=", DpAllReduceName(l.dp_allreduce()),
        " (", DpSyncName(mode), " moves parameters point to point; no all-reduce runs)"));
  }
  return absl::OkStatus();
}

absl::Status CheckGradients(const ParallelLayout& l) {
  // Written as !(inside) so that NaN fails too.
  if (l.gradient_compression() == GradientCompression::TOPK &&
      !(l.topk_ratio() > 0.0f && l.topk_ratio() <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topk_ratio=", l.topk_ratio(), " must be in (0, 1] with gradient_compression ",
        CompressionName(GradientCompression::TOPK), " (the fraction of each bucket sent)"));
  }
  if (!(l.grad_bucket_mb() > 0.0f) || std::isinf(l.grad_bucket_mb())) {
    return absl::InvalidArgumentError(absl::StrCat("grad_bucket_mb=", l.grad_bucket_mb(),
                                                   " must be a positive number of MiB"));
  }
  RETURN_IF_ERROR(CheckGradientSync(l));
  return CheckReplicaSync(l);
}

}  // namespace

absl::Status ValidateLayout(const ParallelLayout& layout, int world_size,
                            const ModelDimensions& model) {
  RETURN_IF_ERROR(CheckSizes(layout));
  RETURN_IF_ERROR(CheckModel(model));
  RETURN_IF_ERROR(ValidateGridShape(layout, world_size));
  RETURN_IF_ERROR(CheckTensorParallel(layout, model));
  RETURN_IF_ERROR(CheckLayerSplit(layout, model));
  RETURN_IF_ERROR(CheckSchedule(layout));
  RETURN_IF_ERROR(CheckGlobalBatch(layout));
  RETURN_IF_ERROR(CheckSequenceParallel(layout, model));
  RETURN_IF_ERROR(CheckZero(layout));
  return CheckGradients(layout);
}

int64_t PaddedVocabSize(int64_t vocab_size, int tensor_parallel) {
  TRIDENT_CHECK_GE(vocab_size, 1);
  TRIDENT_CHECK_GE(tensor_parallel, 1);
  const int64_t multiple = int64_t{kVocabPaddingMultiple} * tensor_parallel;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

}  // namespace trident::topology
