#include "pipeline/profile_report.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/check.h"
#include "core/status_macros.h"
#include "pipeline/schedule.h"
#include "pipeline/schedule_printer.h"
#include "pipeline/simulator.h"
#include "nlohmann/json.hpp"

namespace trident::pipeline {
namespace {

// Max end over all stamps: the step's makespan (its zero is time 0).
std::vector<StageBubble> StageBubbles(const Schedule& schedule, const StageTimings& timings,
                                      double makespan) {
  std::vector<StageBubble> bubbles(schedule.stages.size());
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    StageBubble& bubble = bubbles[s];
    bubble.stage = static_cast<int>(s);
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      if (IsCompute(schedule.stages[s][i].kind)) {
        bubble.busy_s += timings[s][i].end - timings[s][i].start;
      }
    }
    bubble.idle_s = makespan - bubble.busy_s;
    bubble.bubble_fraction = makespan > 0 ? bubble.idle_s / makespan : 0.0;
  }
  return bubbles;
}

double MeanFraction(const std::vector<StageBubble>& bubbles) {
  if (bubbles.empty()) return 0.0;
  double sum = 0.0;
  for (const StageBubble& bubble : bubbles) sum += bubble.bubble_fraction;
  return sum / static_cast<double>(bubbles.size());
}

// --- Chrome trace -------------------------------------------------------

constexpr double kMicrosPerSecond = 1e6;

// Chrome trace timestamps are microseconds, rounded to nanoseconds.
double Micros(double seconds) { return std::round(seconds * 1e9) / 1e3; }

// One event per line, each encoded by nlohmann::json (names escaped).
void AppendEvent(const nlohmann::ordered_json& event, bool* first, std::string* json) {
  absl::StrAppend(json, *first ? "\n" : ",\n", event.dump());
  *first = false;
}

nlohmann::ordered_json MetadataEvent(absl::string_view name, int pid, int tid,
                                     nlohmann::ordered_json args) {
  return {{"name", std::string(name)}, {"ph", "M"}, {"pid", pid}, {"tid", tid},
          {"args", std::move(args)}};
}

void AppendProcessEvents(const Schedule& schedule, const StageTimings& timings, int pid,
                         absl::string_view process_name, bool* first, std::string* json) {
  AppendEvent(MetadataEvent("process_name", pid, 0, {{"name", std::string(process_name)}}),
              first, json);
  AppendEvent(MetadataEvent("process_sort_index", pid, 0, {{"sort_index", pid}}), first, json);
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    const int tid = static_cast<int>(s);
    AppendEvent(MetadataEvent("thread_name", pid, tid, {{"name", absl::StrCat("stage ", s)}}),
                first, json);
    AppendEvent(MetadataEvent("thread_sort_index", pid, tid, {{"sort_index", tid}}), first, json);
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      const Action& action = schedule.stages[s][i];
      const ActionTiming& timing = timings[s][i];
      const double ts = Micros(timing.start);
      const double dur = Micros(timing.end - timing.start);
      if (IsCompute(action.kind)) {
        AppendEvent({{"name", std::string(ComputeLabel(schedule, action))},
                     {"cat", std::string(ActionKindName(action.kind))},
                     {"ph", "X"},
                     {"pid", pid},
                     {"tid", tid},
                     {"ts", ts},
                     {"dur", dur},
                     {"args", {{"mb", action.micro_batch}, {"chunk", action.chunk}}}},
                    first, json);
      } else if ((action.kind == ActionKind::kRecvActivation ||
                  action.kind == ActionKind::kRecvGradient) &&
                 timing.end > timing.start) {
        AppendEvent({{"name", "wait"},
                     {"cat", "wait"},
                     {"ph", "X"},
                     {"pid", pid},
                     {"tid", tid},
                     {"ts", ts},
                     {"dur", dur},
                     {"args",
                      {{"mb", action.micro_batch},
                       {"chunk", action.chunk},
                       {"kind", std::string(ActionKindName(action.kind))},
                       {"peer", action.peer_stage}}}},
                    first, json);
      }
    }
  }
}

// --- SVG ----------------------------------------------------------------

std::string XmlEscape(absl::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      case '\'': escaped += "&apos;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

struct Rgb {
  int r, g, b;
};

// Blue, orange and green: distinguishable, also for the common colour-vision
// deficiencies, and light enough for black labels.
Rgb BaseColour(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward: return {107, 174, 214};
    case ActionKind::kBackwardInput: return {253, 141, 60};
    case ActionKind::kBackwardWeight: return {116, 196, 118};
    default: return {200, 200, 200};
  }
}

// Later local chunks are mixed with white (up to half) so that the chunks of
// an interleaved schedule stay apart while F/B/W keep their hue.
std::string ActionColour(ActionKind kind, int chunk, int num_chunks) {
  const Rgb base = BaseColour(kind);
  const double white = num_chunks > 1 ? 0.5 * chunk / (num_chunks - 1) : 0.0;
  auto mix = [white](int channel) {
    return static_cast<int>(std::lround(channel + (255 - channel) * white));
  };
  return absl::StrFormat("#%02x%02x%02x", mix(base.r), mix(base.g), mix(base.b));
}

constexpr char kIdleColour[] = "#e4e4e4";

// The 1, 2, 5 x 10^k step nearest above `rough`.
double NiceStep(double rough) {
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  const double fraction = rough / magnitude;
  if (fraction <= 1.0) return magnitude;
  if (fraction <= 2.0) return 2.0 * magnitude;
  if (fraction <= 5.0) return 5.0 * magnitude;
  return 10.0 * magnitude;
}

void CheckTimingsFit(const Schedule& schedule, const StageTimings& timings,
                     absl::string_view what) {
  const absl::Status status = ValidateStageTimings(schedule, timings, what);
  TRIDENT_CHECK(status.ok()) << status.ToString();
}

}  // namespace

double Makespan(const StageTimings& timings) {
  double makespan = 0.0;
  for (const std::vector<ActionTiming>& stage : timings) {
    for (const ActionTiming& timing : stage) makespan = std::max(makespan, timing.end);
  }
  return makespan;
}


double AnalyticBubbleFraction(ScheduleKind kind, int p, int m, int v, double f, double b,
                              double w) {
  TRIDENT_CHECK_GE(p, 1);
  TRIDENT_CHECK_GE(m, 1);
  TRIDENT_CHECK_GE(v, 1);
  TRIDENT_CHECK(f >= 0 && b >= 0 && w >= 0) << "f=" << f << " b=" << b << " w=" << w;
  if (p == 1) return 0.0;
  switch (kind) {
    case ScheduleKind::kGPipe:
    case ScheduleKind::kOneFOneB:
      return (p - 1.0) / (m + p - 1.0);
    case ScheduleKind::kInterleaved1F1B:
      return (p - 1.0) / (static_cast<double>(v) * m + p - 1.0);
    case ScheduleKind::kZeroBubbleH1: {
      const double bubble = std::max(0.0, (p - 1.0) * (f + b - w));
      const double total = m * (f + b + w) + bubble;
      return total > 0 ? bubble / total : 0.0;
    }
  }
  return 0.0;
}

absl::Status ValidateStageTimings(const Schedule& schedule, const StageTimings& timings,
                                  absl::string_view what) {
  if (timings.size() != schedule.stages.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s timings: %d stages, but the %s schedule has %d", what,
                        timings.size(), ScheduleKindName(schedule.kind), schedule.stages.size()));
  }
  for (size_t s = 0; s < timings.size(); ++s) {
    if (timings[s].size() != schedule.stages[s].size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s timings: stage %d has %d stamps, but the schedule gives it %d actions", what, s,
          timings[s].size(), schedule.stages[s].size()));
    }
    for (size_t i = 0; i < timings[s].size(); ++i) {
      const ActionTiming& timing = timings[s][i];
      std::string rule;
      if (!std::isfinite(timing.start) || !std::isfinite(timing.end)) {
        rule = "is not finite";
      } else if (timing.start < 0) {
        rule = "starts before the step's zero (start must be >= 0)";
      } else if (timing.end < timing.start) {
        rule = "ends before it starts (end must be >= start)";
      }
      if (!rule.empty()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s timings: stage %d action %d %s: [start %g s, end %g s] %s", what, s, i,
            schedule.stages[s][i].ToString(), timing.start, timing.end, rule));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BubbleReport> MakeBubbleReport(const Schedule& schedule,
                                              const StageTimings& measured,
                                              const StageTimings& replayed) {
  RETURN_IF_ERROR(ValidateStageTimings(schedule, measured, "measured"));
  RETURN_IF_ERROR(ValidateStageTimings(schedule, replayed, "replayed"));
  BubbleReport report;
  report.kind = schedule.kind;
  report.p = static_cast<int>(schedule.stages.size());
  report.m = schedule.num_micro_batches;
  report.v = schedule.num_chunks;

  double sum[3] = {0, 0, 0};
  int64_t count[3] = {0, 0, 0};
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      int slot;
      switch (schedule.stages[s][i].kind) {
        case ActionKind::kForward: slot = 0; break;
        case ActionKind::kBackwardInput: slot = 1; break;
        case ActionKind::kBackwardWeight: slot = 2; break;
        default: continue;
      }
      // The replay's durations are the ones it ran with (the measured wall
      // durations, or the ranks' CPU times when they share cores): the
      // analytic value describes that same ideal pipeline.
      sum[slot] += replayed[s][i].end - replayed[s][i].start;
      ++count[slot];
    }
  }
  auto mean = [&](int slot) { return count[slot] > 0 ? sum[slot] / count[slot] : 0.0; };
  report.mean_forward_s = mean(0);
  report.mean_backward_input_s = mean(1);
  report.mean_backward_weight_s = mean(2);

  report.wall_makespan_s = Makespan(measured);
  report.wall = StageBubbles(schedule, measured, report.wall_makespan_s);
  report.replay_makespan_s = Makespan(replayed);
  report.replay = StageBubbles(schedule, replayed, report.replay_makespan_s);
  // AnalyticBubbleFraction's preconditions are the schedule generators'.
  if (report.p >= 1 && report.m >= 1 && report.v >= 1) {
    report.analytic = AnalyticBubbleFraction(report.kind, report.p, report.m, report.v,
                                             report.mean_forward_s, report.mean_backward_input_s,
                                             report.mean_backward_weight_s);
  }
  report.wall_bubble = MeanFraction(report.wall);
  report.replay_bubble = MeanFraction(report.replay);
  return report;
}

std::vector<std::vector<double>> ComputeDurations(const Schedule& schedule,
                                                  const StageTimings& measured) {
  CheckTimingsFit(schedule, measured, "measured");
  std::vector<std::vector<double>> durations(schedule.stages.size());
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    durations[s].assign(schedule.stages[s].size(), 0.0);
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      if (IsCompute(schedule.stages[s][i].kind)) {
        durations[s][i] = measured[s][i].end - measured[s][i].start;
      }
    }
  }
  return durations;
}

std::string ChromeTraceJson(const Schedule& schedule, const StageTimings& measured,
                            const StageTimings& replayed) {
  CheckTimingsFit(schedule, measured, "measured");
  CheckTimingsFit(schedule, replayed, "replayed");
  std::string json = R"({"displayTimeUnit":"ms","traceEvents":[)";
  bool first = true;
  AppendProcessEvents(schedule, measured, 1, "measured", &first, &json);
  AppendProcessEvents(schedule, replayed, 2, "replayed", &first, &json);
  absl::StrAppend(&json, "\n]}\n");
  return json;
}

std::string TimelineSvg(const Schedule& schedule, const StageTimings& timings,
                        absl::string_view title) {
  CheckTimingsFit(schedule, timings, "timeline");
  constexpr int kWidth = 1200;
  constexpr double kLeft = 80, kRight = 24, kTop = 40, kLane = 26, kGap = 6;
  constexpr double kCharWidth = 6.2;  // of the 10 px sans-serif labels, roughly
  const int p = static_cast<int>(schedule.stages.size());
  const double plot_width = kWidth - kLeft - kRight;
  const double lanes_bottom = kTop + p * (kLane + kGap) - kGap;
  const double axis_y = lanes_bottom + 6;
  const double legend_y = axis_y + 34;
  const int height = static_cast<int>(std::ceil(legend_y + 26));

  const double makespan_ms = Makespan(timings) * 1e3;
  // An empty step still draws a 1 ms axis instead of dividing by zero.
  const double span_ms = makespan_ms > 0 ? makespan_ms : 1.0;
  auto x_of = [&](double seconds) { return kLeft + seconds * 1e3 / span_ms * plot_width; };

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
      kWidth, height, kWidth, height);
  absl::StrAppendFormat(&svg, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
                        kWidth, height);
  absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"24\" font-size=\"15\">%s</text>\n", kLeft,
                        XmlEscape(title));

  // Lanes: the idle background first, then the compute boxes over it.
  for (int s = 0; s < p; ++s) {
    const double y = kTop + s * (kLane + kGap);
    absl::StrAppendFormat(&svg,
                          "<text x=\"%g\" y=\"%.2f\" font-size=\"12\" text-anchor=\"end\" "
                          "dominant-baseline=\"middle\">stage %d</text>\n",
                          kLeft - 8, y + kLane / 2, s);
    absl::StrAppendFormat(&svg,
                          "<rect class=\"idle\" x=\"%g\" y=\"%.2f\" width=\"%.2f\" height=\"%g\" "
                          "fill=\"%s\"/>\n",
                          kLeft, y, plot_width, kLane, kIdleColour);
    for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
      const Action& action = schedule.stages[s][i];
      if (!IsCompute(action.kind)) continue;
      const ActionTiming& timing = timings[s][i];
      const double x0 = x_of(timing.start);
      const double width = x_of(timing.end) - x0;
      const std::string label = ComputeLabel(schedule, action);
      absl::StrAppendFormat(
          &svg,
          "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%g\" fill=\"%s\" "
          "stroke=\"#ffffff\" stroke-width=\"0.5\"><title>stage %d %s: %.3f-%.3f ms</title></rect>\n",
          ActionKindName(action.kind), x0, y, width, kLane,
          ActionColour(action.kind, action.chunk, schedule.num_chunks), s, label,
          timing.start * 1e3, timing.end * 1e3);
      if (width >= kCharWidth * label.size() + 4) {
        absl::StrAppendFormat(&svg,
                              "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" text-anchor=\"middle\" "
                              "dominant-baseline=\"middle\">%s</text>\n",
                              x0 + width / 2, y + kLane / 2, label);
      }
    }
  }

  // Time axis with ticks at 1, 2 or 5 x 10^k ms, about eight of them.
  const double step = NiceStep(span_ms / 8);
  absl::StrAppendFormat(&svg,
                        "<line x1=\"%g\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n",
                        kLeft, axis_y, kLeft + plot_width, axis_y);
  for (int k = 0; k * step <= span_ms * (1 + 1e-9); ++k) {
    const double ms = k * step;
    const double x = kLeft + ms / span_ms * plot_width;
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n",
                          x, axis_y, x, axis_y + 5);
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.2f\" y=\"%.2f\" font-size=\"10\" "
                          "text-anchor=\"middle\">%g</text>\n",
                          x, axis_y + 17, ms);
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%g\" y=\"%.2f\" font-size=\"11\" text-anchor=\"end\">"
                        "time (ms)</text>\n",
                        kLeft - 8, axis_y + 17);

  // Legend: F, B, W and idle swatches.
  struct Entry {
    std::string colour;
    absl::string_view name;
  };
  const Entry entries[] = {
      {ActionColour(ActionKind::kForward, 0, 1), "F forward"},
      {ActionColour(ActionKind::kBackwardInput, 0, 1), "B input gradient"},
      {ActionColour(ActionKind::kBackwardWeight, 0, 1), "W weight gradient"},
      {kIdleColour, "idle"},
  };
  double x = kLeft;
  for (const Entry& entry : entries) {
    absl::StrAppendFormat(&svg,
                          "<rect class=\"legend\" x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"14\" "
                          "fill=\"%s\"/>\n",
                          x, legend_y - 11, entry.colour);
    absl::StrAppendFormat(&svg, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\">%s</text>\n",
                          x + 20, legend_y, entry.name);
    x += 20 + kCharWidth * 1.2 * entry.name.size() + 24;
  }
  if (schedule.num_chunks > 1) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.2f\" y=\"%.2f\" font-size=\"12\">lighter = later chunk "
                          "(label mb.chunk)</text>\n",
                          x, legend_y);
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

std::string SummaryCsv(const BubbleReport& report) {
  std::string csv = "source,stage,busy_ms,idle_ms,bubble_fraction,analytic\n";
  struct Source {
    absl::string_view name;
    const std::vector<StageBubble>* stages;
    double mean_fraction;
  };
  const Source sources[] = {{"wall", &report.wall, report.wall_bubble},
                            {"replay", &report.replay, report.replay_bubble}};
  for (const Source& source : sources) {
    for (const StageBubble& stage : *source.stages) {
      absl::StrAppendFormat(&csv, "%s,%d,%.6f,%.6f,%.6f,%.6f\n", source.name, stage.stage,
                            stage.busy_s * 1e3, stage.idle_s * 1e3, stage.bubble_fraction,
                            report.analytic);
    }
  }
  for (const Source& source : sources) {
    double busy = 0, idle = 0;
    for (const StageBubble& stage : *source.stages) {
      busy += stage.busy_s;
      idle += stage.idle_s;
    }
    const double n = source.stages->empty() ? 1.0 : static_cast<double>(source.stages->size());
    absl::StrAppendFormat(&csv, "%s,all,%.6f,%.6f,%.6f,%.6f\n", source.name, busy / n * 1e3,
                          idle / n * 1e3, source.mean_fraction, report.analytic);
  }
  return csv;
}

std::string SummaryTable(const BubbleReport& report) {
  std::string table = absl::StrFormat(
      "%s p=%d m=%d v=%d: mean F %.3f ms, B %.3f ms, W %.3f ms\n", ScheduleKindName(report.kind),
      report.p, report.m, report.v, report.mean_forward_s * 1e3,
      report.mean_backward_input_s * 1e3, report.mean_backward_weight_s * 1e3);
  const std::string wall_title =
      absl::StrFormat("wall clock (makespan %.3f ms)", report.wall_makespan_s * 1e3);
  const std::string replay_title =
      absl::StrFormat("replayed (makespan %.3f ms)", report.replay_makespan_s * 1e3);
  absl::StrAppendFormat(&table, "%-5s | %-31s | %s\n", "", wall_title, replay_title);
  absl::StrAppendFormat(&table, "%-5s | %10s %10s %9s | %10s %10s %9s | %8s\n", "stage",
                        "busy ms", "idle ms", "bubble", "busy ms", "idle ms", "bubble",
                        "analytic");
  const std::string rule = absl::StrCat(std::string(5, '-'), "-+-", std::string(31, '-'), "-+-",
                                        std::string(31, '-'), "-+-", std::string(8, '-'), "\n");
  absl::StrAppend(&table, rule);
  auto row = [&](absl::string_view stage, double wall_busy, double wall_idle, double wall_frac,
                 double replay_busy, double replay_idle, double replay_frac) {
    absl::StrAppendFormat(&table, "%-5s | %10.3f %10.3f %8.1f%% | %10.3f %10.3f %8.1f%% | %7.1f%%\n",
                          stage, wall_busy * 1e3, wall_idle * 1e3, wall_frac * 100,
                          replay_busy * 1e3, replay_idle * 1e3, replay_frac * 100,
                          report.analytic * 100);
  };
  const size_t rows = std::max(report.wall.size(), report.replay.size());
  const StageBubble none;
  double sums[4] = {0, 0, 0, 0};
  for (size_t s = 0; s < rows; ++s) {
    const StageBubble& wall = s < report.wall.size() ? report.wall[s] : none;
    const StageBubble& replay = s < report.replay.size() ? report.replay[s] : none;
    row(absl::StrCat(s), wall.busy_s, wall.idle_s, wall.bubble_fraction, replay.busy_s,
        replay.idle_s, replay.bubble_fraction);
    sums[0] += wall.busy_s;
    sums[1] += wall.idle_s;
    sums[2] += replay.busy_s;
    sums[3] += replay.idle_s;
  }
  absl::StrAppend(&table, rule);
  const double n = rows > 0 ? static_cast<double>(rows) : 1.0;
  row("mean", sums[0] / n, sums[1] / n, report.wall_bubble, sums[2] / n, sums[3] / n,
      report.replay_bubble);
  return table;
}

}  // namespace trident::pipeline
