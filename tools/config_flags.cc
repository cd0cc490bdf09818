#include "tools/config_flags.h"

#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "topology/layout_io.h"
#include "topology/layout_validation.h"
#include "training/default_config.h"
#include "training/precision.h"
#include "training/train_config.h"

ABSL_FLAG(std::string, config, "", "TrainConfig textproto; the embedded default when empty");
ABSL_FLAG(std::optional<int64_t>, seed, std::nullopt,
          "seed for initialisation and data order, >= 0 (unset: the config's)");
ABSL_FLAG(std::optional<int>, tp, std::nullopt, "tensor-parallel degree");
ABSL_FLAG(std::optional<int>, pp, std::nullopt, "pipeline-parallel degree");
ABSL_FLAG(std::optional<int>, dp, std::nullopt, "data-parallel degree");
ABSL_FLAG(std::optional<int>, micro_batches, std::nullopt,
          "micro-batches per step (derived from --global_batch_size when that is set)");
ABSL_FLAG(std::optional<int>, micro_batch_size, std::nullopt, "sequences per micro-batch");
ABSL_FLAG(std::optional<int>, global_batch_size, std::nullopt,
          "sequences per step over all replicas; micro_batches = global_batch_size / "
          "(micro_batch_size x dp), so changing --dp keeps the batch");
ABSL_FLAG(std::optional<int>, virtual_stages, std::nullopt, "virtual pipeline stages per rank");
ABSL_FLAG(std::optional<std::string>, schedule, std::nullopt, "gpipe, 1f1b, interleaved or zb-h1");
ABSL_FLAG(bool, sequence_parallel, false,
          "turn on sequence parallelism (needs --tp > 1); a config that turns it on keeps it");
ABSL_FLAG(std::optional<int>, zero_stage, std::nullopt, "ZeRO stage 0-3");
ABSL_FLAG(std::optional<bool>, overlap_grad_reduce, std::nullopt,
          "start each gradient bucket's reduction during the backward (default on)");
ABSL_FLAG(std::optional<float>, grad_bucket_mb, std::nullopt,
          "gradient bucket size in MiB of fp32 (default 25)");
ABSL_FLAG(bool, cpu_offload, false,
          "ZeRO-Offload: optimizer state and the AdamW update on the host (needs --zero_stage "
          ">= 1)");
ABSL_FLAG(std::optional<std::string>, recompute, std::nullopt,
          "activation recomputation: none, selective (the attention core) or full (each "
          "layer's forward, keeping only its input)");
ABSL_FLAG(std::optional<std::string>, gradient_compression, std::nullopt,
          "data-parallel gradient compression: none, bf16, fp16, topk, int8 or powersgd (needs "
          "--zero_stage=0)");
ABSL_FLAG(std::optional<int>, powersgd_rank, std::nullopt,
          "PowerSGD: rank of each 2-D gradient's approximation, >= 1 (default 4)");
ABSL_FLAG(std::optional<float>, topk_ratio, std::nullopt,
          "Top-K: fraction of each bucket sent, in (0, 1] (default 0.01)");
ABSL_FLAG(bool, topk_adaptive, false,
          "Top-K: K from the moving average of the gradient's measured sparsity");
ABSL_FLAG(std::optional<std::string>, compression_scaling, std::nullopt,
          "bf16/fp16 transport scaling: dynamic (per message, from its max; default) or static "
          "(the layout's compression_static_scale)");
ABSL_FLAG(std::optional<std::string>, dp_allreduce, std::nullopt,
          "how gradient buckets are all-reduced over dp: native, ring or tree");
ABSL_FLAG(std::optional<std::string>, precision, std::nullopt,
          "fp32, bf16 or fp16: 16-bit parameters, activations and gradients with fp32 master "
          "weights (unset: the config's, fp32 by default)");
ABSL_FLAG(std::optional<std::string>, loss_scale, std::nullopt,
          "fp16 only: dynamic (start at 2^16, halve on overflow, double after "
          "--loss_scale_window clean steps) or a static scale, e.g. 1024");
ABSL_FLAG(std::optional<int>, loss_scale_window, std::nullopt,
          "fp16 only: clean steps before a dynamic loss scale doubles (default 1000)");
ABSL_FLAG(std::optional<int>, hysteresis, std::nullopt,
          "fp16 only: overflowing steps tolerated before the loss scale halves (default 2)");
ABSL_FLAG(std::optional<std::string>, dp_sync, std::nullopt,
          "how replicas stay together: sync (gradients summed every step; default), local_sgd "
          "(parameters averaged every --local_sgd_steps) or gossip (parameters mixed with ring "
          "neighbours every step) or ps (parameter server with bounded staleness: "
          "--ps_servers, --ps_staleness; mpirun -np tp x pp x dp + ps_servers; not with "
          "fp16); local_sgd, gossip and ps need --zero_stage=0 and "
          "--gradient_compression=none");
ABSL_FLAG(std::optional<int>, local_sgd_steps, std::nullopt,
          "local SGD: steps between parameter averages, >= 1 (default 8)");
ABSL_FLAG(std::optional<int>, ps_servers, std::nullopt,
          "dp_sync=ps: server ranks beyond the tp x pp x dp workers, >= 1 (default 1)");
ABSL_FLAG(std::optional<int>, ps_staleness, std::nullopt,
          "dp_sync=ps: steps a worker may run ahead of the slowest worker, >= 0 (default 0: "
          "synchronous)");

namespace trident::tools {
namespace {

// --precision and the loss-scale flags. A loss-scale flag with another
// precision than fp16 is refused here, naming the flag; the same rule for a
// config file is ValidateTrainConfig's.
absl::Status ApplyPrecisionFlags(training::TrainConfig& config) {
  if (const std::optional<std::string> name = absl::GetFlag(FLAGS_precision)) {
    ASSIGN_OR_RETURN(const training::Precision precision, training::ParsePrecision(*name));
    config.set_precision(precision);
  }
  const std::optional<std::string> scale = absl::GetFlag(FLAGS_loss_scale);
  const std::optional<int> window = absl::GetFlag(FLAGS_loss_scale_window);
  const std::optional<int> hysteresis = absl::GetFlag(FLAGS_hysteresis);
  std::string given;
  if (scale) given = absl::StrCat("--loss_scale=", *scale);
  if (window) given = absl::StrCat("--loss_scale_window=", *window);
  if (hysteresis) given = absl::StrCat("--hysteresis=", *hysteresis);
  if (given.empty()) return absl::OkStatus();
  if (config.precision() != training::FP16) {
    return absl::InvalidArgumentError(
        absl::StrCat(given, " applies to --precision=fp16 only, but the precision is ",
                     training::PrecisionName(config.precision()),
                     " (fp32 and bf16 need no loss scaler)"));
  }
  training::LossScaleConfig* loss_scale = config.mutable_loss_scale();
  if (scale) RETURN_IF_ERROR(training::ApplyLossScaleFlag(*scale, loss_scale));
  if (window) {
    if (*window < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--loss_scale_window=", *window, " must be >= 1 (clean steps before the scale doubles)"));
    }
    loss_scale->set_window(*window);
  }
  if (hysteresis) {
    if (*hysteresis < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--hysteresis=", *hysteresis,
                       " must be >= 1 (overflowing steps before the scale halves)"));
    }
    loss_scale->set_hysteresis(*hysteresis);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<training::TrainConfig> TrainConfigFromFlags() {
  training::TrainConfig config;
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    ASSIGN_OR_RETURN(config, training::ParseTrainConfig(training::DefaultTrainConfigText(),
                                                        "<embedded default config>"));
  } else {
    ASSIGN_OR_RETURN(config, training::LoadTrainConfig(io::ResolveUserPath(config_path)));
  }
  if (const std::optional<int64_t> seed = absl::GetFlag(FLAGS_seed)) {
    if (*seed < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seed=", *seed, " must be >= 0 (0 is a valid seed)"));
    }
    config.set_seed(*seed);
  }
  RETURN_IF_ERROR(ApplyPrecisionFlags(config));
  RETURN_IF_ERROR(ApplyLayoutFlags(config.mutable_layout()));
  return config;
}

absl::Status ApplyLayoutFlags(topology::ParallelLayout* layout) {
  topology::LayoutOverrides overrides;
  overrides.tp = absl::GetFlag(FLAGS_tp);
  overrides.pp = absl::GetFlag(FLAGS_pp);
  overrides.dp = absl::GetFlag(FLAGS_dp);
  overrides.micro_batches = absl::GetFlag(FLAGS_micro_batches);
  overrides.micro_batch_size = absl::GetFlag(FLAGS_micro_batch_size);
  overrides.global_batch_size = absl::GetFlag(FLAGS_global_batch_size);
  overrides.virtual_stages = absl::GetFlag(FLAGS_virtual_stages);
  overrides.schedule = absl::GetFlag(FLAGS_schedule);
  if (absl::GetFlag(FLAGS_sequence_parallel)) overrides.sequence_parallel = true;
  overrides.zero_stage = absl::GetFlag(FLAGS_zero_stage);
  overrides.overlap_grad_reduce = absl::GetFlag(FLAGS_overlap_grad_reduce);
  overrides.grad_bucket_mb = absl::GetFlag(FLAGS_grad_bucket_mb);
  if (absl::GetFlag(FLAGS_cpu_offload)) overrides.cpu_offload = true;
  overrides.recompute = absl::GetFlag(FLAGS_recompute);
  overrides.gradient_compression = absl::GetFlag(FLAGS_gradient_compression);
  overrides.topk_ratio = absl::GetFlag(FLAGS_topk_ratio);
  if (absl::GetFlag(FLAGS_topk_adaptive)) overrides.topk_adaptive = true;
  overrides.powersgd_rank = absl::GetFlag(FLAGS_powersgd_rank);
  overrides.compression_scaling = absl::GetFlag(FLAGS_compression_scaling);
  overrides.dp_allreduce = absl::GetFlag(FLAGS_dp_allreduce);
  overrides.dp_sync = absl::GetFlag(FLAGS_dp_sync);
  overrides.local_sgd_steps = absl::GetFlag(FLAGS_local_sgd_steps);
  overrides.ps_servers = absl::GetFlag(FLAGS_ps_servers);
  overrides.ps_staleness = absl::GetFlag(FLAGS_ps_staleness);
  RETURN_IF_ERROR(topology::ApplyOverrides(overrides, layout));
  return topology::DeriveMicroBatches(layout);
}

bool SeedFlagGiven() { return absl::GetFlag(FLAGS_seed).has_value(); }

std::string ConfigFileFromFlags() {
  const std::string path = absl::GetFlag(FLAGS_config);
  return path.empty() ? path : io::ResolveUserPath(path);
}

}  // namespace trident::tools
