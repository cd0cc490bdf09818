#include "pipeline/schedule_printer.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pipeline/simulator.h"

namespace trident::pipeline {

std::string ComputeLabel(const Schedule& schedule, const Action& action) {
  std::string label = absl::StrCat(ActionKindName(action.kind), action.micro_batch);
  if (schedule.num_chunks > 1) absl::StrAppend(&label, ".", action.chunk);
  return label;
}

std::string FormatActionLists(const Schedule& schedule, bool include_transfers) {
  std::string text;
  for (int s = 0; s < static_cast<int>(schedule.stages.size()); ++s) {
    std::vector<std::string> items;
    for (const Action& action : schedule.stages[s]) {
      if (IsCompute(action.kind)) {
        items.push_back(ComputeLabel(schedule, action));
      } else if (include_transfers) {
        items.push_back(action.ToString());
      }
    }
    absl::StrAppend(&text, "stage ", s, ": ", absl::StrJoin(items, " "), "\n");
  }
  return text;
}

absl::StatusOr<std::string> RenderUnitTimeline(const Schedule& schedule) {
  absl::StatusOr<SimulationResult> replay = CheckSchedule(schedule);
  if (!replay.ok()) return replay.status();
  // Unit durations make every start time a whole number.
  const int slots = static_cast<int>(std::lround(replay->makespan));
  std::vector<std::vector<std::string>> grid(schedule.num_stages,
                                             std::vector<std::string>(slots, ".."));
  size_t width = 2;
  for (int s = 0; s < schedule.num_stages; ++s) {
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      const Action& action = schedule.stages[s][i];
      if (!IsCompute(action.kind)) continue;
      const int slot = static_cast<int>(std::lround(replay->timings[s][i].start));
      grid[s][slot] = ComputeLabel(schedule, action);
      width = std::max(width, grid[s][slot].size());
    }
  }
  const int stage_digits = static_cast<int>(absl::StrCat(schedule.num_stages - 1).size());
  std::string text;
  for (int s = 0; s < schedule.num_stages; ++s) {
    std::vector<std::string> cells;
    for (const std::string& cell : grid[s]) {
      cells.push_back(absl::StrFormat("%-*s", static_cast<int>(width), cell));
    }
    std::string row = absl::StrJoin(cells, " ");
    row.erase(row.find_last_not_of(' ') + 1);
    absl::StrAppendFormat(&text, "stage %*d: %s\n", stage_digits, s, row);
  }
  for (int s = 0; s < schedule.num_stages; ++s) {
    absl::StrAppendFormat(&text, "stage %*d bubble: %.4f\n", stage_digits, s,
                          replay->bubble_fraction[s]);
  }
  return text;
}

}  // namespace trident::pipeline
