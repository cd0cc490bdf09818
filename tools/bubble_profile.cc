// Profiles the pipeline bubble of a layout on real training steps:
//
//   bazel run //tools:bubble_profile -- --pp=4 --micro_batches=8 --schedule=1f1b \
//       --out_dir=out/bubble
//
// runs a few steps of the model (the config and layout flags of //tools:train;
// the local backend, synthetic tokens), stamps every action of every stage,
// replays the schedule with the measured durations as if every stage had a
// device of its own, and writes
//   DIR/trace.json          Chrome trace (open in https://ui.perfetto.dev):
//                           measured and replayed, one thread per stage;
//   DIR/timeline.svg        the replayed step, one lane per stage;
//   DIR/timeline_wall.svg   the measured step on the wall clock;
//   DIR/summary.csv         busy, idle and bubble per stage, wall and replay,
//                           next to the analytic bubble;
// and prints the table.

#include <cstdio>
#include <filesystem>
#include <system_error>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/atomic_file.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "pipeline/profile_report.h"
#include "pipeline/schedule.h"
#include "tools/config_flags.h"
#include "training/pipeline_profile.h"
#include "training/run_files.h"

ABSL_FLAG(std::string, out_dir, "out/bubble_profile",
          "directory for trace.json, timeline.svg, timeline_wall.svg and summary.csv");
ABSL_FLAG(int, warmup_steps, 2, "steps run before the profiled ones");
ABSL_FLAG(int, profile_steps, 3, "profiled steps; the one with the median makespan is reported");

namespace trident {
namespace {

std::string Title(const training::PipelineProfile& profile, bool replayed) {
  const pipeline::BubbleReport& r = profile.report;
  std::string title = absl::StrFormat(
      "%s p=%d m=%d%s, %s: bubble %.1f%% (analytic %.1f%%)",
      pipeline::ScheduleKindName(r.kind), r.p, r.m,
      r.v > 1 ? absl::StrCat(" v=", r.v) : std::string(),
      replayed ? absl::StrCat("replayed (", profile.replay_source, ")") : "wall clock",
      100 * (replayed ? r.replay_bubble : r.wall_bubble), 100 * r.analytic);
  return title;
}

absl::Status Run() {
  training::PipelineProfileOptions options;
  ASSIGN_OR_RETURN(options.config, tools::TrainConfigFromFlags());
  options.warmup_steps = absl::GetFlag(FLAGS_warmup_steps);
  options.profile_steps = absl::GetFlag(FLAGS_profile_steps);
  const std::string out_dir = io::ResolveUserPath(absl::GetFlag(FLAGS_out_dir));
  if (out_dir.empty()) return absl::InvalidArgumentError("--out_dir must name a directory");
  // The report files must not land on the config the run reads.
  const std::string config_file = tools::ConfigFileFromFlags();
  if (!config_file.empty()) {
    RETURN_IF_ERROR(training::CheckOutputSparesInputs("--out_dir", out_dir, /*is_directory=*/true,
                                                      {config_file}));
  }

  ASSIGN_OR_RETURN(const training::PipelineProfile profile, training::ProfilePipeline(options));
  const pipeline::Schedule& schedule = profile.schedule;
  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out_dir=", out_dir, " cannot be created: ", error.message()));
  }
  RETURN_IF_ERROR(io::WriteFileAtomically(
      out_dir + "/trace.json", pipeline::ChromeTraceJson(schedule, profile.wall, profile.replayed)));
  RETURN_IF_ERROR(io::WriteFileAtomically(
      out_dir + "/timeline.svg",
      pipeline::TimelineSvg(schedule, profile.replayed, Title(profile, /*replayed=*/true))));
  RETURN_IF_ERROR(io::WriteFileAtomically(
      out_dir + "/timeline_wall.svg",
      pipeline::TimelineSvg(schedule, profile.wall, Title(profile, /*replayed=*/false))));
  RETURN_IF_ERROR(
      io::WriteFileAtomically(out_dir + "/summary.csv", pipeline::SummaryCsv(profile.report)));

  std::cout << pipeline::SummaryTable(profile.report);
  std::cout << "replay durations: " << profile.replay_source << " (" << profile.threads_per_rank
            << " compute thread(s) per rank)\n";
  std::cout << "peak activation memory per stage (MiB):";
  for (int64_t bytes : profile.peak_stash_bytes) {
    std::cout << absl::StrFormat(" %.2f", bytes / 1048576.0);
  }
  std::cout << "\nwrote " << out_dir << "/{trace.json,timeline.svg,timeline_wall.svg,summary.csv}\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures and replays the pipeline bubble of a layout; writes a Chrome trace, SVG "
      "timelines and a CSV summary to --out_dir.");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = trident::Run();
  if (!status.ok()) {
    std::cerr << "bubble_profile: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
