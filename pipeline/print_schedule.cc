// Prints a pipeline schedule for people: the unit-duration timeline (one row
// per stage, ".." for idle) and, with --transfers, every stage's action list.
//
//   bazel run //pipeline:print_schedule -- --schedule=zb-h1 --pp=4 --micro_batches=8

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "pipeline/schedule.h"
#include "pipeline/schedule_printer.h"

ABSL_FLAG(std::string, schedule, "1f1b", "gpipe, 1f1b, interleaved or zb-h1");
ABSL_FLAG(int, pp, 4, "pipeline stages");
ABSL_FLAG(int, micro_batches, 8, "micro-batches per step");
ABSL_FLAG(int, virtual_stages, 1, "model chunks per stage (interleaved only)");
ABSL_FLAG(bool, transfers, false, "also print the action lists with sends and receives");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace trident::pipeline;
  absl::StatusOr<ScheduleKind> kind = ParseScheduleKind(absl::GetFlag(FLAGS_schedule));
  if (!kind.ok()) {
    std::fprintf(stderr, "error: %s\n", kind.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<Schedule> schedule =
      MakeSchedule(*kind, absl::GetFlag(FLAGS_pp), absl::GetFlag(FLAGS_micro_batches),
                   absl::GetFlag(FLAGS_virtual_stages));
  if (!schedule.ok()) {
    std::fprintf(stderr, "error: %s\n", schedule.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::string> timeline = RenderUnitTimeline(*schedule);
  if (!timeline.ok()) {
    std::fprintf(stderr, "error: %s\n", timeline.status().ToString().c_str());
    return 1;
  }
  std::printf("%s", timeline->c_str());
  if (absl::GetFlag(FLAGS_transfers)) {
    std::printf("\n%s", FormatActionLists(*schedule, /*include_transfers=*/true).c_str());
  }
  return 0;
}
