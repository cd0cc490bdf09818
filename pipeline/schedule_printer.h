#ifndef TRIDENT_PIPELINE_SCHEDULE_PRINTER_H_
#define TRIDENT_PIPELINE_SCHEDULE_PRINTER_H_

// Text renderings of a Schedule for people: one row per stage.

#include <string>

#include "absl/status/statusor.h"
#include "pipeline/schedule.h"

namespace trident::pipeline {

// Label of a compute action: "F3", "B0", "W2"; with more than one chunk per
// stage the local chunk follows a dot: "F3.1".
std::string ComputeLabel(const Schedule& schedule, const Action& action);

// The action lists in order, one line per stage ("stage 0: F0 F1 B0 W0 ...").
// With `include_transfers`, sends and receives appear as "SEND_ACT(mb=0,
// chunk=0, peer=1)" and so on.
std::string FormatActionLists(const Schedule& schedule, bool include_transfers);

// The unit-duration replay (F = B = W = 1, free transfers) as a grid: one
// column per time unit, one row per stage; idle units show as "..". Ends with
// a line per stage giving its bubble fraction. Fails when the schedule does not
// pass CheckSchedule.
absl::StatusOr<std::string> RenderUnitTimeline(const Schedule& schedule);

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_SCHEDULE_PRINTER_H_
