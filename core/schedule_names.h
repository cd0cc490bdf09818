#ifndef TRIDENT_CORE_SCHEDULE_NAMES_H_
#define TRIDENT_CORE_SCHEDULE_NAMES_H_

// The pipeline schedules' names as users type them (--schedule=zb-h1) and as
// reports and messages print them, defined once. Both sides that name
// schedules use this table: pipeline (ScheduleKindName, ParseScheduleKind) and
// topology (ScheduleName, ParseScheduleName, for the layout's
// PipelineSchedule). Neither may depend on the other (DESIGN.md: both use
// only core), so the names live here, indexed in the order shared by
// pipeline::ScheduleKind and topology::PipelineSchedule; each side
// static_asserts that order.

#include <array>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident {

inline constexpr std::array<absl::string_view, 4> kPipelineScheduleNames = {
    "gpipe", "1f1b", "interleaved", "zb-h1"};

// The index of `name` in kPipelineScheduleNames, ignoring ASCII case; an
// unknown name is INVALID_ARGUMENT: unknown schedule "x" (valid: "gpipe", ...).
absl::StatusOr<int> ParsePipelineScheduleName(absl::string_view name);

}  // namespace trident

#endif  // TRIDENT_CORE_SCHEDULE_NAMES_H_
