#include "pipeline/profile_report.h"

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pipeline/schedule.h"
#include "pipeline/schedule_printer.h"
#include "pipeline/simulator.h"

namespace trident::pipeline {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The simulator works in abstract units; the profiler in seconds. A unit is a
// millisecond here, like a small model's action on a CPU.
constexpr double kSecondsPerUnit = 1e-3;

StageTimings ScaledTimings(const SimulationResult& result, double seconds_per_unit) {
  StageTimings timings = result.timings;
  for (std::vector<ActionTiming>& stage : timings) {
    for (ActionTiming& timing : stage) {
      timing.start *= seconds_per_unit;
      timing.end *= seconds_per_unit;
    }
  }
  return timings;
}

SimulationResult Simulate(const Schedule& schedule, const ActionDurations& durations) {
  absl::StatusOr<SimulationResult> result = SimulateSchedule(schedule, durations);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *std::move(result) : SimulationResult{};
}

int CountComputeActions(const Schedule& schedule) {
  int count = 0;
  for (const std::vector<Action>& stage : schedule.stages) {
    for (const Action& action : stage) count += IsCompute(action.kind) ? 1 : 0;
  }
  return count;
}

int CountSubstrings(absl::string_view text, absl::string_view needle) {
  int count = 0;
  for (size_t pos = text.find(needle); pos != absl::string_view::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

TEST(AnalyticBubbleFractionTest, PublishedValues) {
  // p = 4, m = 8.
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kGPipe, 4, 8, 1, 1, 2, 0), 3.0 / 11.0);
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kOneFOneB, 4, 8, 1, 1, 1, 1), 3.0 / 11.0);
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kInterleaved1F1B, 4, 8, 2, 1, 1, 1),
            3.0 / 19.0);
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kZeroBubbleH1, 4, 8, 1, 1, 1, 1), 3.0 / 27.0);
  // ZB-H1 with unequal passes: bubble 3 (1 + 2 - 0.5) = 7.5 over 8 * 3.5 + 7.5.
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kZeroBubbleH1, 4, 8, 1, 1, 2, 0.5),
            7.5 / 35.5);
  // W longer than F + B: W fills the whole bubble, which cannot go negative.
  EXPECT_EQ(AnalyticBubbleFraction(ScheduleKind::kZeroBubbleH1, 4, 8, 1, 1, 1, 3), 0.0);
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneB,
                            ScheduleKind::kInterleaved1F1B, ScheduleKind::kZeroBubbleH1}) {
    EXPECT_EQ(AnalyticBubbleFraction(kind, 1, 8, 1, 1, 1, 1), 0.0) << ScheduleKindName(kind);
  }
}

// Where simulator.h says the replay is exact, the analytic value equals every
// stage's replayed bubble bit for bit (both are the correctly rounded quotient
// of the same two integers), and MakeBubbleReport's means feed it correctly.
TEST(AnalyticBubbleFractionTest, EqualsExactReplays) {
  struct Case {
    ScheduleKind kind;
    int v;
    ActionDurations durations;
  };
  for (int p = 1; p <= 6; ++p) {
    for (int m = 1; m <= 12; ++m) {
      std::vector<Case> cases = {
          {ScheduleKind::kGPipe, 1, ActionDurations::FusedBackward()},
          {ScheduleKind::kOneFOneB, 1, ActionDurations::FusedBackward()},
      };
      if (m % p == 0) {
        cases.push_back({ScheduleKind::kInterleaved1F1B, 2, ActionDurations::FusedBackward()});
      }
      if (m >= p) cases.push_back({ScheduleKind::kZeroBubbleH1, 1, ActionDurations::Unit()});
      for (const Case& c : cases) {
        const std::string name =
            absl::StrCat(ScheduleKindName(c.kind), " p=", p, " m=", m, " v=", c.v);
        const Schedule schedule = *MakeSchedule(c.kind, p, m, c.v);
        const SimulationResult replay = Simulate(schedule, c.durations);
        const double analytic =
            AnalyticBubbleFraction(c.kind, p, m, c.v, c.durations.forward,
                                   c.durations.backward_input, c.durations.backward_weight);
        for (int s = 0; s < p; ++s) {
          EXPECT_EQ(replay.bubble_fraction[s], analytic) << name << " stage " << s;
        }
        // Unit timings scaled by a power of two stay exact in seconds.
        const StageTimings timings = ScaledTimings(replay, 0.25);
        absl::StatusOr<BubbleReport> report = MakeBubbleReport(schedule, timings, timings);
        ASSERT_TRUE(report.ok()) << name << ": " << report.status();
        EXPECT_EQ(report->mean_forward_s, 0.25 * c.durations.forward) << name;
        EXPECT_EQ(report->mean_backward_input_s, 0.25 * c.durations.backward_input) << name;
        EXPECT_EQ(report->mean_backward_weight_s, 0.25 * c.durations.backward_weight) << name;
        EXPECT_EQ(report->analytic, analytic) << name;
        // A mean over p equal values may round in its last bit.
        EXPECT_NEAR(report->replay_bubble, analytic, 1e-15) << name;
        EXPECT_NEAR(report->wall_bubble, analytic, 1e-15) << name;
      }
    }
  }
}

TEST(MakeBubbleReportTest, HandBuiltSingleStage) {
  const Schedule schedule = *MakeOneFOneBSchedule(1, 1);
  ASSERT_EQ(schedule.stages.size(), 1u);
  ASSERT_EQ(schedule.stages[0].size(), 3u);  // F0 B0 W0, nothing to send
  // F 1 s, a 0.5 s gap, B 1.5 s, W 0.5 s: busy 3 s of 3.5 s.
  const StageTimings measured = {{{0.0, 1.0}, {1.5, 3.0}, {3.0, 3.5}}};
  const StageTimings replayed = {{{0.0, 1.0}, {1.0, 2.5}, {2.5, 3.0}}};
  absl::StatusOr<BubbleReport> report = MakeBubbleReport(schedule, measured, replayed);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->p, 1);
  EXPECT_EQ(report->m, 1);
  EXPECT_EQ(report->v, 1);
  EXPECT_EQ(report->mean_forward_s, 1.0);
  EXPECT_EQ(report->mean_backward_input_s, 1.5);
  EXPECT_EQ(report->mean_backward_weight_s, 0.5);
  EXPECT_EQ(report->wall_makespan_s, 3.5);
  ASSERT_EQ(report->wall.size(), 1u);
  EXPECT_EQ(report->wall[0].busy_s, 3.0);
  EXPECT_EQ(report->wall[0].idle_s, 0.5);
  EXPECT_EQ(report->wall[0].bubble_fraction, 0.5 / 3.5);
  EXPECT_EQ(report->wall_bubble, 0.5 / 3.5);
  EXPECT_EQ(report->replay_makespan_s, 3.0);
  EXPECT_EQ(report->replay[0].idle_s, 0.0);
  EXPECT_EQ(report->replay_bubble, 0.0);
  EXPECT_EQ(report->analytic, 0.0);
}

// Measured stamps taken from one simulation, replayed stamps from another
// with other durations: the report reproduces each simulation's numbers, its
// mean durations are the replay's, and ComputeDurations hands back the
// durations the measured one used.
TEST(MakeBubbleReportTest, ReproducesSimulations) {
  const ActionDurations measured_durations = {1.5, 2.5, 0.75, 0.25};
  const ActionDurations replay_durations = {1.0, 2.0, 1.0, 0.0};
  struct Case {
    ScheduleKind kind;
    int p, m, v;
  };
  for (const Case& c : {Case{ScheduleKind::kGPipe, 4, 8, 1}, Case{ScheduleKind::kOneFOneB, 4, 8, 1},
                        Case{ScheduleKind::kInterleaved1F1B, 4, 8, 2},
                        Case{ScheduleKind::kZeroBubbleH1, 4, 8, 1},
                        Case{ScheduleKind::kOneFOneB, 3, 2, 1}}) {
    const std::string name = absl::StrCat(ScheduleKindName(c.kind), " p=", c.p, " m=", c.m);
    const Schedule schedule = *MakeSchedule(c.kind, c.p, c.m, c.v);
    const SimulationResult measured_sim = Simulate(schedule, measured_durations);
    const SimulationResult replay_sim = Simulate(schedule, replay_durations);
    const StageTimings measured = ScaledTimings(measured_sim, kSecondsPerUnit);
    const StageTimings replayed = ScaledTimings(replay_sim, kSecondsPerUnit);
    absl::StatusOr<BubbleReport> report = MakeBubbleReport(schedule, measured, replayed);
    ASSERT_TRUE(report.ok()) << name << ": " << report.status();

    // Stamps are ~1e-2 s: their differences carry rounding of ~1e-17 s.
    constexpr double kTolerance = 1e-15;
    // The means (and the analytic value) describe the replayed durations.
    EXPECT_NEAR(report->mean_forward_s, 1.0e-3, kTolerance) << name;
    EXPECT_NEAR(report->mean_backward_input_s, 2.0e-3, kTolerance) << name;
    EXPECT_NEAR(report->mean_backward_weight_s, 1.0e-3, kTolerance) << name;
    EXPECT_EQ(report->analytic,
              AnalyticBubbleFraction(c.kind, c.p, c.m, c.v, report->mean_forward_s,
                                     report->mean_backward_input_s,
                                     report->mean_backward_weight_s))
        << name;
    EXPECT_NEAR(report->wall_makespan_s, measured_sim.makespan * kSecondsPerUnit, kTolerance);
    EXPECT_NEAR(report->replay_makespan_s, replay_sim.makespan * kSecondsPerUnit, kTolerance);
    ASSERT_EQ(report->wall.size(), static_cast<size_t>(c.p));
    ASSERT_EQ(report->replay.size(), static_cast<size_t>(c.p));
    double wall_sum = 0, replay_sum = 0;
    for (int s = 0; s < c.p; ++s) {
      EXPECT_EQ(report->wall[s].stage, s);
      EXPECT_NEAR(report->wall[s].busy_s, measured_sim.busy[s] * kSecondsPerUnit, kTolerance)
          << name << " stage " << s;
      EXPECT_NEAR(report->wall[s].idle_s + report->wall[s].busy_s, report->wall_makespan_s,
                  kTolerance);
      EXPECT_NEAR(report->wall[s].bubble_fraction, measured_sim.bubble_fraction[s], 1e-12)
          << name << " stage " << s;
      EXPECT_NEAR(report->replay[s].busy_s, replay_sim.busy[s] * kSecondsPerUnit, kTolerance)
          << name << " stage " << s;
      EXPECT_NEAR(report->replay[s].bubble_fraction, replay_sim.bubble_fraction[s], 1e-12)
          << name << " stage " << s;
      wall_sum += measured_sim.bubble_fraction[s];
      replay_sum += replay_sim.bubble_fraction[s];
    }
    EXPECT_NEAR(report->wall_bubble, wall_sum / c.p, 1e-12) << name;
    EXPECT_NEAR(report->replay_bubble, replay_sum / c.p, 1e-12) << name;
    // Latency and slower passes make the measured step's bubble larger.
    EXPECT_GT(report->wall_bubble, report->replay_bubble) << name;

    const std::vector<std::vector<double>> durations = ComputeDurations(schedule, measured);
    ASSERT_EQ(durations.size(), schedule.stages.size());
    for (int s = 0; s < c.p; ++s) {
      ASSERT_EQ(durations[s].size(), schedule.stages[s].size());
      for (size_t i = 0; i < durations[s].size(); ++i) {
        double expected = 0.0;
        switch (schedule.stages[s][i].kind) {
          case ActionKind::kForward: expected = 1.5e-3; break;
          case ActionKind::kBackwardInput: expected = 2.5e-3; break;
          case ActionKind::kBackwardWeight: expected = 0.75e-3; break;
          default: break;  // transfers, including receives that waited
        }
        EXPECT_NEAR(durations[s][i], expected, kTolerance)
            << name << " stage " << s << " " << schedule.stages[s][i].ToString();
      }
    }
  }
}

TEST(MakeBubbleReportTest, RejectsBadTimings) {
  const Schedule schedule = *MakeOneFOneBSchedule(3, 4);
  const StageTimings good =
      ScaledTimings(Simulate(schedule, ActionDurations::Unit()), kSecondsPerUnit);
  ASSERT_TRUE(MakeBubbleReport(schedule, good, good).ok());

  auto expect_error = [&](const StageTimings& measured, const StageTimings& replayed,
                          const std::vector<std::string>& fragments) {
    absl::StatusOr<BubbleReport> report = MakeBubbleReport(schedule, measured, replayed);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& fragment : fragments) {
      EXPECT_THAT(report.status().message(), HasSubstr(fragment));
    }
  };

  StageTimings missing_stage = good;
  missing_stage.pop_back();
  expect_error(missing_stage, good, {"measured", "2 stages", "has 3"});

  StageTimings short_stage = good;
  short_stage[1].pop_back();
  expect_error(good, short_stage,
               {"replayed", "stage 1", absl::StrCat(short_stage[1].size(), " stamps"),
                absl::StrCat(schedule.stages[1].size(), " actions")});

  // The last action of stage 2 is its final W, which takes time.
  StageTimings backwards = good;
  const size_t last = backwards[2].size() - 1;
  ASSERT_EQ(schedule.stages[2][last].kind, ActionKind::kBackwardWeight);
  std::swap(backwards[2][last].start, backwards[2][last].end);
  expect_error(backwards, good,
               {"measured", absl::StrCat("stage 2 action ", last),
                schedule.stages[2][last].ToString(), "end must be >= start"});

  StageTimings not_finite = good;
  not_finite[0][1].end = std::numeric_limits<double>::quiet_NaN();
  expect_error(good, not_finite, {"replayed", "stage 0 action 1", "not finite"});
  not_finite[0][1].end = std::numeric_limits<double>::infinity();
  expect_error(not_finite, good, {"measured", "stage 0 action 1", "not finite"});

  StageTimings negative = good;
  negative[1][0].start = -1e-6;
  expect_error(negative, good, {"measured", "stage 1 action 0", "start must be >= 0"});
}

// Parses the trace and groups its events by (pid, tid).
struct ParsedTrace {
  std::map<int, std::string> process_names;
  std::map<std::pair<int, int>, std::string> thread_names;
  // X events per (pid, tid): name, category, ts, dur, mb.
  struct Event {
    std::string name, category;
    double ts = 0, dur = 0;
    int64_t mb = -1;
  };
  std::map<std::pair<int, int>, std::vector<Event>> events;
};

ParsedTrace ParseTrace(const std::string& json) {
  ParsedTrace trace;
  const nlohmann::json root = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(root.is_discarded()) << json;
  if (root.is_discarded()) return trace;
  EXPECT_TRUE(root.contains("traceEvents"));
  if (!root.contains("traceEvents")) return trace;
  for (const nlohmann::json& event : root["traceEvents"]) {
    const int pid = event["pid"].get<int>();
    const int tid = event["tid"].get<int>();
    const std::string ph = event["ph"].get<std::string>();
    const std::string name = event["name"].get<std::string>();
    const nlohmann::json& args = event["args"];
    if (ph == "M") {
      if (name == "process_name") trace.process_names[pid] = args["name"].get<std::string>();
      if (name == "thread_name") trace.thread_names[{pid, tid}] = args["name"].get<std::string>();
      continue;
    }
    EXPECT_EQ(ph, "X");
    ParsedTrace::Event parsed;
    parsed.name = name;
    parsed.category = event["cat"].get<std::string>();
    EXPECT_TRUE(event["ts"].is_number() && event["dur"].is_number());
    parsed.ts = event["ts"].get<double>();
    parsed.dur = event["dur"].get<double>();
    parsed.mb = args["mb"].get<int64_t>();
    EXPECT_TRUE(args.contains("chunk"));
    trace.events[{pid, tid}].push_back(parsed);
  }
  return trace;
}

TEST(ChromeTraceJsonTest, ParsesAndHoldsEveryAction) {
  for (const auto& [kind, p, m, v] : {std::tuple{ScheduleKind::kOneFOneB, 3, 4, 1},
                                      std::tuple{ScheduleKind::kInterleaved1F1B, 2, 4, 2}}) {
    const Schedule schedule = *MakeSchedule(kind, p, m, v);
    const StageTimings measured =
        ScaledTimings(Simulate(schedule, {1.5, 2.5, 0.75, 0.25}), kSecondsPerUnit);
    const StageTimings replayed =
        ScaledTimings(Simulate(schedule, ActionDurations::Unit()), kSecondsPerUnit);
    const ParsedTrace trace = ParseTrace(ChromeTraceJson(schedule, measured, replayed));
    EXPECT_EQ(trace.process_names.at(1), "measured");
    EXPECT_EQ(trace.process_names.at(2), "replayed");

    int compute_events = 0;
    for (int pid : {1, 2}) {
      const StageTimings& timings = pid == 1 ? measured : replayed;
      for (int s = 0; s < p; ++s) {
        EXPECT_EQ(trace.thread_names.at({pid, s}), absl::StrCat("stage ", s));
        const auto found = trace.events.find({pid, s});
        ASSERT_NE(found, trace.events.end());
        const std::vector<ParsedTrace::Event>& events = found->second;
        // Events follow the action list: compute actions and waiting receives.
        size_t next = 0;
        for (size_t i = 0; i < schedule.stages[s].size(); ++i) {
          const Action& action = schedule.stages[s][i];
          const ActionTiming& timing = timings[s][i];
          const bool waits = (action.kind == ActionKind::kRecvActivation ||
                              action.kind == ActionKind::kRecvGradient) &&
                             timing.end > timing.start;
          if (!IsCompute(action.kind) && !waits) continue;
          ASSERT_LT(next, events.size()) << "pid " << pid << " stage " << s;
          const ParsedTrace::Event& event = events[next++];
          EXPECT_EQ(event.name, IsCompute(action.kind) ? ComputeLabel(schedule, action) : "wait");
          EXPECT_EQ(event.category,
                    IsCompute(action.kind) ? std::string(ActionKindName(action.kind)) : "wait");
          EXPECT_EQ(event.mb, action.micro_batch);
          // Microseconds printed with three decimals.
          EXPECT_NEAR(event.ts, timing.start * 1e6, 5e-4);
          EXPECT_NEAR(event.dur, (timing.end - timing.start) * 1e6, 1e-3);
          if (IsCompute(action.kind)) ++compute_events;
        }
        EXPECT_EQ(next, events.size()) << "pid " << pid << " stage " << s;
      }
    }
    EXPECT_EQ(compute_events, 2 * CountComputeActions(schedule));
  }
}

TEST(ChromeTraceJsonTest, MeasuredWaitsAppear) {
  // With a transfer latency the later stages wait for their first activation.
  const Schedule schedule = *MakeOneFOneBSchedule(2, 2);
  const StageTimings measured =
      ScaledTimings(Simulate(schedule, {1.0, 2.0, 1.0, 0.5}), kSecondsPerUnit);
  const ParsedTrace trace = ParseTrace(ChromeTraceJson(schedule, measured, measured));
  int waits = 0;
  for (const auto& [key, events] : trace.events) {
    for (const ParsedTrace::Event& event : events) waits += event.name == "wait" ? 1 : 0;
  }
  EXPECT_GT(waits, 0);
}

TEST(TimelineSvgTest, OneBoxPerActionAndEscapedTitle) {
  const Schedule schedule = *MakeInterleavedSchedule(2, 4, 2);
  const StageTimings timings =
      ScaledTimings(Simulate(schedule, ActionDurations::FusedBackward()), kSecondsPerUnit);
  const std::string svg = TimelineSvg(schedule, timings, "interleaved <v=2> & more");
  EXPECT_THAT(svg, StartsWith("<svg"));
  EXPECT_TRUE(absl::EndsWith(svg, "</svg>\n"));
  EXPECT_THAT(svg, HasSubstr("interleaved &lt;v=2&gt; &amp; more"));
  EXPECT_THAT(svg, ::testing::Not(HasSubstr("<v=2>")));
  const int compute = CountComputeActions(schedule);
  // Canvas, one idle background per lane, the boxes, four legend swatches.
  EXPECT_EQ(CountSubstrings(svg, "<rect"), 1 + schedule.num_stages + compute + 4);
  EXPECT_EQ(CountSubstrings(svg, "<rect class=\"idle\""), schedule.num_stages);
  const int per_kind = schedule.num_stages * schedule.num_micro_batches * schedule.num_chunks;
  EXPECT_EQ(CountSubstrings(svg, "<rect class=\"F\""), per_kind);
  EXPECT_EQ(CountSubstrings(svg, "<rect class=\"B\""), per_kind);
  EXPECT_EQ(CountSubstrings(svg, "<rect class=\"W\""), per_kind);
  for (int s = 0; s < schedule.num_stages; ++s) {
    EXPECT_THAT(svg, HasSubstr(absl::StrCat(">stage ", s, "</text>")));
  }
  // F boxes of the two chunks differ in shade; B and W differ from F.
  EXPECT_THAT(svg, HasSubstr("fill=\"#6baed6\""));  // F, chunk 0
  EXPECT_THAT(svg, HasSubstr("fill=\"#b5d7eb\""));  // F, chunk 1: half-way to white
  // The F of stage 0 starts at time 0: the left edge of the plot.
  EXPECT_THAT(svg, HasSubstr("<rect class=\"F\" x=\"80.00\""));
}

TEST(TimelineSvgTest, EmptyStepStillDraws) {
  const Schedule schedule = *MakeOneFOneBSchedule(1, 1);
  const StageTimings zero = {{{0, 0}, {0, 0}, {0, 0}}};
  const std::string svg = TimelineSvg(schedule, zero, "nothing ran");
  EXPECT_TRUE(absl::EndsWith(svg, "</svg>\n"));
  // No attribute value or tick label became NaN or infinite.
  for (absl::string_view bad : {"\"nan", "\"-nan", "\"inf", "\"-inf", ">nan<", ">inf<"}) {
    EXPECT_THAT(svg, ::testing::Not(HasSubstr(bad)));
  }
  EXPECT_EQ(CountSubstrings(svg, "<rect class=\"F\" x=\"80.00\" y=\"40.00\" width=\"0.00\""), 1);
}

BubbleReport ReportFor(const Schedule& schedule) {
  const StageTimings measured =
      ScaledTimings(Simulate(schedule, {1.5, 2.5, 0.75, 0.25}), kSecondsPerUnit);
  const StageTimings replayed =
      ScaledTimings(Simulate(schedule, ActionDurations::Unit()), kSecondsPerUnit);
  absl::StatusOr<BubbleReport> report = MakeBubbleReport(schedule, measured, replayed);
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : BubbleReport{};
}

TEST(SummaryTest, CsvRows) {
  const Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  const BubbleReport report = ReportFor(schedule);
  const std::vector<std::string> lines =
      absl::StrSplit(SummaryCsv(report), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u + 2 * 4 + 2);
  EXPECT_EQ(lines[0], "source,stage,busy_ms,idle_ms,bubble_fraction,analytic");
  for (size_t row = 1; row < lines.size(); ++row) {
    const std::vector<std::string> cells = absl::StrSplit(lines[row], ',');
    ASSERT_EQ(cells.size(), 6u) << lines[row];
    const bool mean_row = row > 8;
    const bool wall = mean_row ? row == 9 : row <= 4;
    EXPECT_EQ(cells[0], wall ? "wall" : "replay") << lines[row];
    const std::vector<StageBubble>& stages = wall ? report.wall : report.replay;
    double busy_ms, idle_ms, fraction, analytic;
    ASSERT_TRUE(absl::SimpleAtod(cells[2], &busy_ms));
    ASSERT_TRUE(absl::SimpleAtod(cells[3], &idle_ms));
    ASSERT_TRUE(absl::SimpleAtod(cells[4], &fraction));
    ASSERT_TRUE(absl::SimpleAtod(cells[5], &analytic));
    // Six decimals printed.
    EXPECT_NEAR(analytic, 3.0 / 11.0, 5e-7);
    if (mean_row) {
      EXPECT_EQ(cells[1], "all");
      EXPECT_NEAR(fraction, wall ? report.wall_bubble : report.replay_bubble, 5e-7);
    } else {
      const int s = static_cast<int>((row - 1) % 4);
      EXPECT_EQ(cells[1], absl::StrCat(s));
      EXPECT_NEAR(busy_ms, stages[s].busy_s * 1e3, 5e-7);
      EXPECT_NEAR(idle_ms, stages[s].idle_s * 1e3, 5e-7);
      EXPECT_NEAR(fraction, stages[s].bubble_fraction, 5e-7);
    }
  }
}

TEST(SummaryTest, TableHasStageRowsAndMean) {
  const Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  const BubbleReport report = ReportFor(schedule);
  const std::string table = SummaryTable(report);
  const std::vector<std::string> lines = absl::StrSplit(table, '\n', absl::SkipEmpty());
  // Title, two header lines, a rule, four stages, a rule, the mean.
  ASSERT_EQ(lines.size(), 10u) << table;
  EXPECT_THAT(lines[0], StartsWith("1f1b p=4 m=8 v=1"));
  for (int s = 0; s < 4; ++s) {
    EXPECT_THAT(lines[4 + s], StartsWith(absl::StrCat(s, " ")));
    EXPECT_THAT(lines[4 + s], HasSubstr(absl::StrFormat("%.1f%%", report.wall[s].bubble_fraction * 100)));
  }
  EXPECT_THAT(lines[9], StartsWith("mean"));
  EXPECT_THAT(lines[9], HasSubstr(absl::StrFormat("%.1f%%", report.replay_bubble * 100)));
  EXPECT_THAT(lines[9], HasSubstr("27.3%"));  // analytic 3 / 11
  // Aligned: every row of the body is as long as the header.
  for (size_t i = 2; i < lines.size(); ++i) EXPECT_EQ(lines[i].size(), lines[2].size()) << i;
}

}  // namespace
}  // namespace trident::pipeline
