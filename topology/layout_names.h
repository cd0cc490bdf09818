#ifndef TRIDENT_TOPOLOGY_LAYOUT_NAMES_H_
#define TRIDENT_TOPOLOGY_LAYOUT_NAMES_H_

// Short names of the layout's enums, as users type them in flags
// (--schedule=interleaved) and as tools print them.

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "topology/layout.pb.h"

namespace trident::topology {

// Its name in core/schedule_names.h ("gpipe", "1f1b", "interleaved", "zb-h1").
absl::string_view ScheduleName(PipelineSchedule schedule);
// Inverse of ScheduleName; an unknown name is INVALID_ARGUMENT listing the
// valid ones.
absl::StatusOr<PipelineSchedule> ParseScheduleName(absl::string_view name);

// "none", "selective", "full".
absl::string_view RecomputeName(Recompute::Policy policy);
absl::StatusOr<Recompute::Policy> ParseRecomputeName(absl::string_view name);

// "none", "bf16", "topk", "int8".
absl::string_view CompressionName(GradientCompression::Method method);
absl::StatusOr<GradientCompression::Method> ParseCompressionName(absl::string_view name);
absl::string_view CompressionScalingName(GradientCompression::Scaling scaling);
absl::StatusOr<GradientCompression::Scaling> ParseCompressionScalingName(absl::string_view name);
absl::string_view DpAllReduceName(DpAllReduce::Algorithm algorithm);
absl::StatusOr<DpAllReduce::Algorithm> ParseDpAllReduceName(absl::string_view name);
// "sync", "local_sgd", "gossip", "ps".
absl::string_view DpSyncName(DpSync::Mode mode);
absl::StatusOr<DpSync::Mode> ParseDpSyncName(absl::string_view name);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_LAYOUT_NAMES_H_
