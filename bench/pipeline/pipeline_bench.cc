// Pipeline schedules on a real model: p = 4 stages, m = 8 micro-batches, one
// run per schedule (GPipe, 1F1B, interleaved with v = 2, ZB-H1) through
// training::ProfilePipeline (the bubble profiler's measurement). Prints, per
// schedule, the wall-clock and replayed bubble next to the analytic value, the
// replayed step time, the reduction against 1F1B measured in the same run, and
// the peak activation memory per stage (GPipe holds all m micro-batches, 1F1B
// at most p - s on stage s).
//
//   bazel run //bench/pipeline:pipeline_bench -- --out_dir=/tmp/pipeline_bench
//
// writes each schedule's replayed timeline as SVG into --out_dir when given.

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/atomic_file.h"
#include "core/status_macros.h"
#include "pipeline/profile_report.h"
#include "topology/layout.pb.h"
#include "training/default_config.h"
#include "training/pipeline_profile.h"
#include "training/train_config.h"

ABSL_FLAG(int, pp, 4, "pipeline stages");
ABSL_FLAG(int, micro_batches, 8, "micro-batches per step");
ABSL_FLAG(int, micro_batch_size, 4, "sequences per micro-batch");
ABSL_FLAG(int, layers, 8, "transformer layers (a multiple of 2 x --pp for interleaving)");
ABSL_FLAG(int, profile_steps, 5, "profiled steps per schedule (the median is reported)");
ABSL_FLAG(std::string, out_dir, "", "write <schedule>.svg timelines here (empty: none)");

namespace trident {
namespace {

struct Row {
  std::string name;
  training::PipelineProfile profile;
};

absl::Status Run() {
  ASSIGN_OR_RETURN(training::TrainConfig base,
                   training::ParseTrainConfig(training::DefaultTrainConfigText(), "<default>"));
  base.mutable_model()->set_num_layers(absl::GetFlag(FLAGS_layers));
  topology::ParallelLayout& layout = *base.mutable_layout();
  layout.Clear();
  layout.set_pipeline_parallel(absl::GetFlag(FLAGS_pp));
  layout.set_num_micro_batches(absl::GetFlag(FLAGS_micro_batches));
  layout.set_micro_batch_size(absl::GetFlag(FLAGS_micro_batch_size));

  const std::vector<std::pair<topology::PipelineSchedule, int>> schedules = {
      {topology::GPIPE, 1},
      {topology::ONE_F_ONE_B, 1},
      {topology::INTERLEAVED_1F1B, 2},
      {topology::ZERO_BUBBLE_H1, 1}};
  std::vector<Row> rows;
  for (const auto& [schedule, v] : schedules) {
    training::PipelineProfileOptions options;
    options.config = base;
    options.config.mutable_layout()->set_schedule(schedule);
    options.config.mutable_layout()->set_virtual_pipeline_stages(v);
    options.warmup_steps = 2;
    options.profile_steps = absl::GetFlag(FLAGS_profile_steps);
    ASSIGN_OR_RETURN(training::PipelineProfile profile, training::ProfilePipeline(options));
    rows.push_back({std::string(pipeline::ScheduleKindName(profile.schedule.kind)) +
                        (v > 1 ? absl::StrCat(" v=", v) : ""),
                    std::move(profile)});
  }

  const auto& model = base.model();
  std::printf(
      "pipeline_bench: p=%d m=%d, GPT %d layers hidden %d, micro-batch %d x %d tokens; replay "
      "durations: %s\n\n",
      layout.pipeline_parallel(), layout.num_micro_batches(), model.num_layers(),
      model.hidden_size(), layout.micro_batch_size(), base.data().seq_length(),
      rows[0].profile.replay_source.c_str());
  std::printf("%-15s | %8s | %8s | %8s | %8s | %10s | %9s | %s\n", "schedule", "wall", "replayed",
              "analytic", "replay-", "replayed", "vs 1F1B", "peak activations per stage (MiB)");
  std::printf("%-15s | %8s | %8s | %8s | %8s | %10s | %9s | %s\n", "", "bubble", "bubble", "bubble",
              "analytic", "step (ms)", "step", "");
  std::printf("%s\n", std::string(120, '-').c_str());
  const training::PipelineProfile& one_f_one_b = rows[1].profile;
  for (const Row& row : rows) {
    const pipeline::BubbleReport& r = row.profile.report;
    std::string memory;
    for (int64_t bytes : row.profile.peak_stash_bytes) {
      absl::StrAppend(&memory, absl::StrFormat("%7.2f", bytes / 1048576.0));
    }
    std::printf("%-15s | %7.1f%% | %7.1f%% | %7.1f%% | %+7.1fpt | %10.1f | %8.3fx | %s\n",
                row.name.c_str(), 100 * r.wall_bubble, 100 * r.replay_bubble, 100 * r.analytic,
                100 * (r.replay_bubble - r.analytic), 1e3 * r.replay_makespan_s,
                r.replay_makespan_s / one_f_one_b.report.replay_makespan_s, memory.c_str());
  }
  std::printf("\nbubble reduction against 1F1B (points): measured in the replay vs analytic\n");
  for (const Row& row : rows) {
    const pipeline::BubbleReport& r = row.profile.report;
    std::printf("  %-15s %+6.1f vs %+6.1f\n", row.name.c_str(),
                100 * (r.replay_bubble - one_f_one_b.report.replay_bubble),
                100 * (r.analytic - one_f_one_b.report.analytic));
  }
  const double gpipe_peak = static_cast<double>(rows[0].profile.peak_stash_bytes[0]);
  const double f1b_peak = static_cast<double>(rows[1].profile.peak_stash_bytes[0]);
  std::printf("\nstage 0 peak activations: GPipe / 1F1B = %.2f (micro-batches in flight: m / p = %.2f)\n",
              gpipe_peak / f1b_peak,
              static_cast<double>(layout.num_micro_batches()) / layout.pipeline_parallel());

  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  if (!out_dir.empty()) {
    std::filesystem::create_directories(out_dir);
    for (const Row& row : rows) {
      const pipeline::BubbleReport& r = row.profile.report;
      const std::string title = absl::StrFormat(
          "%s p=%d m=%d, replayed: bubble %.1f%% (analytic %.1f%%)", row.name, r.p, r.m,
          100 * r.replay_bubble, 100 * r.analytic);
      std::string file = row.name;
      for (char& c : file) {
        if (c == ' ' || c == '=') c = '_';
      }
      RETURN_IF_ERROR(io::WriteFileAtomically(
          absl::StrCat(out_dir, "/", file, ".svg"),
          pipeline::TimelineSvg(row.profile.schedule, row.profile.replayed, title)));
    }
    std::printf("wrote the replayed timelines to %s\n", out_dir.c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Pipeline schedules on a real model: bubbles and activation memory.");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::Run();
  if (!status.ok()) {
    std::cerr << "pipeline_bench: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
