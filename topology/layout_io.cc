#include "topology/layout_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/io/text_proto.h"
#include "core/status_macros.h"
#include "topology/layout_names.h"

namespace trident::topology {

absl::StatusOr<ParallelLayout> ParseLayoutText(absl::string_view text,
                                               absl::string_view source_name) {
  ParallelLayout layout;
  RETURN_IF_ERROR(io::ParseTextProto(text, source_name, &layout));
  return layout;
}

absl::StatusOr<ParallelLayout> LoadLayoutFromFile(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout file ", path, " is a directory, not a textproto file"));
  }
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("cannot open layout file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read layout file ", path, ": ", std::strerror(errno)));
  }
  return ParseLayoutText(contents.str(), path);
}

std::string LayoutToText(const ParallelLayout& layout) {
  return io::PrintTextProto(layout);
}

bool LayoutOverrides::empty() const {
  return !tp && !pp && !dp && !micro_batches && !micro_batch_size && !global_batch_size &&
         !virtual_stages && !schedule && !sequence_parallel && !zero_stage &&
         !overlap_grad_reduce && !grad_bucket_mb && !cpu_offload && !rank_order && !recompute &&
         !gradient_compression && !topk_ratio && !topk_adaptive && !powersgd_rank &&
         !compression_scaling && !dp_allreduce && !dp_sync && !local_sgd_steps &&
         !ps_servers && !ps_staleness;
}

absl::Status ApplyOverrides(const LayoutOverrides& overrides, ParallelLayout* layout) {
  // Work on a copy so a failed override leaves the caller's layout untouched.
  ParallelLayout result = *layout;
  if (overrides.tp) result.set_tensor_parallel(*overrides.tp);
  if (overrides.pp) result.set_pipeline_parallel(*overrides.pp);
  if (overrides.dp) result.set_data_parallel(*overrides.dp);
  if (overrides.micro_batches) result.set_num_micro_batches(*overrides.micro_batches);
  if (overrides.micro_batch_size) result.set_micro_batch_size(*overrides.micro_batch_size);
  if (overrides.global_batch_size) result.set_global_batch_size(*overrides.global_batch_size);
  // A new dp, micro-batch size or global batch re-derives the micro-batch count.
  if (result.global_batch_size() > 0 && !overrides.micro_batches &&
      (overrides.dp || overrides.micro_batch_size || overrides.global_batch_size)) {
    result.clear_num_micro_batches();
  }
  if (overrides.virtual_stages) result.set_virtual_pipeline_stages(*overrides.virtual_stages);
  if (overrides.schedule) {
    ASSIGN_OR_RETURN(PipelineSchedule schedule, ParseScheduleName(*overrides.schedule));
    result.set_schedule(schedule);
  }
  if (overrides.sequence_parallel) result.set_sequence_parallel(*overrides.sequence_parallel);
  if (overrides.zero_stage) result.set_zero_stage(*overrides.zero_stage);
  if (overrides.overlap_grad_reduce) result.set_overlap_grad_reduce(*overrides.overlap_grad_reduce);
  if (overrides.grad_bucket_mb) result.set_grad_bucket_mb(*overrides.grad_bucket_mb);
  if (overrides.cpu_offload) result.set_cpu_offload(*overrides.cpu_offload);
  if (overrides.rank_order) result.set_rank_order(*overrides.rank_order);
  if (overrides.recompute) {
    ASSIGN_OR_RETURN(Recompute::Policy policy, ParseRecomputeName(*overrides.recompute));
    result.set_recompute(policy);
  }
  if (overrides.gradient_compression) {
    ASSIGN_OR_RETURN(GradientCompression::Method method,
                     ParseCompressionName(*overrides.gradient_compression));
    result.set_gradient_compression(method);
  }
  if (overrides.topk_ratio) result.set_topk_ratio(*overrides.topk_ratio);
  if (overrides.topk_adaptive) result.set_topk_adaptive(*overrides.topk_adaptive);
  if (overrides.powersgd_rank) result.set_powersgd_rank(*overrides.powersgd_rank);
  if (overrides.compression_scaling) {
    ASSIGN_OR_RETURN(GradientCompression::Scaling scaling,
                     ParseCompressionScalingName(*overrides.compression_scaling));
    result.set_compression_scaling(scaling);
  }
  if (overrides.dp_allreduce) {
    ASSIGN_OR_RETURN(DpAllReduce::Algorithm algorithm,
                     ParseDpAllReduceName(*overrides.dp_allreduce));
    result.set_dp_allreduce(algorithm);
  }
  if (overrides.dp_sync) {
    ASSIGN_OR_RETURN(DpSync::Mode mode, ParseDpSyncName(*overrides.dp_sync));
    result.set_dp_sync(mode);
  }
  if (overrides.local_sgd_steps) result.set_local_sgd_steps(*overrides.local_sgd_steps);
  if (overrides.ps_servers) result.set_ps_servers(*overrides.ps_servers);
  if (overrides.ps_staleness) result.set_ps_staleness(*overrides.ps_staleness);
  *layout = std::move(result);
  return absl::OkStatus();
}

}  // namespace trident::topology
