#ifndef TRIDENT_PIPELINE_PROFILE_REPORT_H_
#define TRIDENT_PIPELINE_PROFILE_REPORT_H_

// The bubble profiler's outputs (//tools:bubble_profile): pure functions that
// turn the stamps of one pipeline step into a per-stage bubble report, a
// Chrome trace, an SVG timeline, a CSV summary and a terminal table.
//
// Two timings of the same schedule feed them (DESIGN.md, "Observability"):
//   - measured: the executor's wall-clock stamps. Several ranks may share one
//     core or GPU here, so these bubbles mix pipeline idling with contention;
//   - replayed: the simulator's replay with each action's measured duration
//     (ComputeDurations) as if every stage had its own device.
// Both are compared with the analytic bubble of the schedule kind.
//
// Accounting: a stage is busy while it runs F, B or W; everything else up to
// the step's makespan (transfers, waiting for data, waiting at the end for
// the slowest stage) is idle. Bubble fraction = idle / makespan.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pipeline/schedule.h"
#include "pipeline/simulator.h"

namespace trident::pipeline {

// Timing of one step: timings[s][i] is the [start, end] in SECONDS of
// schedule.stages[s][i], on a clock common to all stages whose zero is the
// step's start.
using StageTimings = std::vector<std::vector<ActionTiming>>;

// The analytic bubble fraction of a schedule with mean action durations f, b
// and w (any unit, the same for all three):
//   GPipe, 1F1B:  (p - 1) / (m + p - 1)
//   interleaved:  (p - 1) / (v m + p - 1)
//   ZB-H1:        bubble time (p - 1)(f + b - w), clamped at >= 0 (Qi et al.
//                 2023: W fills part of 1F1B's (p - 1)(f + b + w) bubble), over
//                 m (f + b + w) + that bubble time; (p - 1) / (3 m + p - 1)
//                 when f = b = w. This is the m >= p value; with fewer
//                 micro-batches W cannot fill the bubble completely.
//   p == 1:       0.
// `v` only matters for interleaved. Requires p, m, v >= 1 and f, b, w >= 0
// (an internal invariant: callers pass a validated schedule's parameters).
double AnalyticBubbleFraction(ScheduleKind kind, int p, int m, int v, double f, double b,
                              double w);

struct StageBubble {
  int stage = 0;
  double busy_s = 0;           // sum of F/B/W durations on this stage
  double idle_s = 0;           // makespan - busy (transfers and waiting count as idle)
  double bubble_fraction = 0;  // idle / makespan; 0 when the makespan is 0
};

struct BubbleReport {
  ScheduleKind kind = ScheduleKind::kOneFOneB;
  int p = 1;
  int m = 1;
  int v = 1;
  // Means over all stages' F, B and W actions of the replayed durations; 0
  // for a kind with no action.
  double mean_forward_s = 0;
  double mean_backward_input_s = 0;
  double mean_backward_weight_s = 0;
  double wall_makespan_s = 0;
  std::vector<StageBubble> wall;  // from the measured stamps
  double replay_makespan_s = 0;
  std::vector<StageBubble> replay;  // from the replay
  double analytic = 0;       // AnalyticBubbleFraction with the measured means
  double wall_bubble = 0;    // mean over stages of wall[s].bubble_fraction
  double replay_bubble = 0;  // mean over stages of replay[s].bubble_fraction
};

// OK when `timings` fits `schedule`: one list per stage, one stamp per action,
// every value finite, 0 <= start <= end. Otherwise INVALID_ARGUMENT naming
// `what` ("measured", "replayed"), the stage, the action and the rule broken.
// The latest end over every stage's actions (the step's zero is time 0).
double Makespan(const StageTimings& timings);

absl::Status ValidateStageTimings(const Schedule& schedule, const StageTimings& timings,
                                  absl::string_view what);

// Per-stage busy/idle of both timings and the analytic value. Makespan = max
// end over all stages' actions (the step's zero is time 0). Fails as
// ValidateStageTimings does for either timing.
absl::StatusOr<BubbleReport> MakeBubbleReport(const Schedule& schedule,
                                              const StageTimings& measured,
                                              const StageTimings& replayed);

// Per-action measured durations (end - start) for compute actions, 0 for
// transfers, shaped like schedule.stages: the input of the replay. `measured`
// must pass ValidateStageTimings (checked).
std::vector<std::vector<double>> ComputeDurations(const Schedule& schedule,
                                                  const StageTimings& measured);

// Chrome trace event format (a JSON object with "traceEvents"; opens in
// Perfetto and chrome://tracing): process 1 "measured" and process 2
// "replayed", each with one thread per stage ("stage 0", ...). Every F/B/W is
// a complete event ("ph":"X", "ts"/"dur" in microseconds) named by
// ComputeLabel ("F3", "B0.1"), category "F", "B" or "W", args {mb, chunk};
// every RECV that waited longer than zero is an X event named "wait",
// category "wait", args {mb, chunk, kind, peer}. Metadata events ("ph":"M")
// name the processes and threads. Both timings must pass
// ValidateStageTimings (checked).
std::string ChromeTraceJson(const Schedule& schedule, const StageTimings& measured,
                            const StageTimings& replayed);

// A self-contained SVG timeline, 1200 px wide: a title line given by the
// caller (e.g. "1F1B p=4 m=8, replayed: bubble 27.1% (analytic 27.3%)"), one
// labelled lane per stage on a light grey (idle) background, F/B/W rectangles
// in three colours (lighter for higher local chunks when v > 1) labelled when
// wide enough, a time axis with ticks in ms and a legend. Text is XML-escaped.
// Rectangles: one canvas background, one lane background per stage, one per
// compute action (class "F", "B" or "W"), four legend swatches. `timings`
// must pass ValidateStageTimings (checked).
std::string TimelineSvg(const Schedule& schedule, const StageTimings& timings,
                        absl::string_view title);

// CSV: header "source,stage,busy_ms,idle_ms,bubble_fraction,analytic", one row
// per stage for source "wall", one per stage for "replay", then one row per
// source with stage "all" holding the means over stages.
std::string SummaryCsv(const BubbleReport& report);

// The same as an aligned text table for the terminal: stage | wall busy, idle,
// bubble | replay busy, idle, bubble | analytic, ending with a mean line.
std::string SummaryTable(const BubbleReport& report);

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_PROFILE_REPORT_H_
