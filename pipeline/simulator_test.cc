#include "pipeline/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pipeline/schedule.h"

namespace trident::pipeline {
namespace {

using ::testing::HasSubstr;

struct Case {
  ScheduleKind kind;
  int p;
  int m;
  int v;
  std::string Name() const {
    return absl::StrCat(ScheduleKindName(kind), " p=", p, " m=", m, " v=", v);
  }
};

// Every valid (schedule, p, m, v) with p in 1..8, m in 1..16, v in {1, 2, 4}.
std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (int p = 1; p <= 8; ++p) {
    for (int m = 1; m <= 16; ++m) {
      cases.push_back({ScheduleKind::kGPipe, p, m, 1});
      cases.push_back({ScheduleKind::kOneFOneB, p, m, 1});
      cases.push_back({ScheduleKind::kZeroBubbleH1, p, m, 1});
      if (m % p == 0) {
        for (int v : {1, 2, 4}) cases.push_back({ScheduleKind::kInterleaved1F1B, p, m, v});
      }
    }
  }
  return cases;
}

TEST(SimulatorTest, EveryGeneratedScheduleIsCompleteAndDeadlockFree) {
  for (const Case& c : AllCases()) {
    absl::StatusOr<Schedule> schedule = MakeSchedule(c.kind, c.p, c.m, c.v);
    ASSERT_TRUE(schedule.ok()) << c.Name() << ": " << schedule.status();
    absl::StatusOr<SimulationResult> result = CheckSchedule(*schedule);
    ASSERT_TRUE(result.ok()) << c.Name() << ": " << result.status();
    for (int s = 0; s < c.p; ++s) {
      // Each stage runs F, B and W of every micro-batch on each of its chunks.
      EXPECT_EQ(result->busy[s], 3.0 * c.m * c.v) << c.Name() << " stage " << s;
    }
  }
}

TEST(SimulatorTest, PeakInFlightActivations) {
  for (const Case& c : AllCases()) {
    const Schedule schedule = *MakeSchedule(c.kind, c.p, c.m, c.v);
    absl::StatusOr<SimulationResult> r = CheckSchedule(schedule);
    ASSERT_TRUE(r.ok()) << c.Name() << ": " << r.status();
    int peak_over_stages = 0;
    for (int s = 0; s < c.p; ++s) {
      const int in_flight = r->peak_in_flight[s];
      peak_over_stages = std::max(peak_over_stages, in_flight);
      switch (c.kind) {
        case ScheduleKind::kGPipe:
          EXPECT_EQ(in_flight, c.m) << c.Name() << " stage " << s;
          break;
        case ScheduleKind::kOneFOneB:
          EXPECT_LE(in_flight, c.p - s) << c.Name() << " stage " << s;
          EXPECT_EQ(in_flight, std::min(c.p - s, c.m)) << c.Name() << " stage " << s;
          break;
        case ScheduleKind::kZeroBubbleH1:
          // Between F and B: exactly 1F1B's count. Between F and W: never more
          // than 1F1B's peak (stage 0's), the bound the paper keeps.
          EXPECT_EQ(r->peak_awaiting_backward[s], std::min(c.p - s, c.m))
              << c.Name() << " stage " << s;
          EXPECT_LE(in_flight, std::min(c.p, c.m)) << c.Name() << " stage " << s;
          break;
        case ScheduleKind::kInterleaved1F1B:
          // Warm-up forwards plus the one of the first steady step, in units of
          // one chunk's activations.
          EXPECT_EQ(in_flight,
                    std::min((c.v - 1) * c.p + 2 * (c.p - s - 1) + 1, c.m * c.v))
              << c.Name() << " stage " << s;
          break;
      }
    }
    if (c.kind == ScheduleKind::kZeroBubbleH1) {
      EXPECT_EQ(peak_over_stages, std::min(c.p, c.m)) << c.Name();
    }
  }
}

// Replays with F = 1, B = 2, W = 0 (the whole backward at twice the forward,
// the assumption of the published formulas) reproduce them exactly:
//   GPipe, 1F1B:  bubble / makespan = (p - 1) / (m + p - 1)
//   interleaved:  bubble / makespan = (p - 1) / (v m + p - 1), which is
//                 Megatron's bubble / ideal time = (p - 1) / (v m).
// Both sides are correctly rounded quotients of the same rational, so the
// comparison is exact.
TEST(SimulatorTest, FusedBackwardReplayEqualsPublishedBubble) {
  for (const Case& c : AllCases()) {
    if (c.kind == ScheduleKind::kZeroBubbleH1) continue;
    const Schedule schedule = *MakeSchedule(c.kind, c.p, c.m, c.v);
    absl::StatusOr<SimulationResult> r =
        SimulateSchedule(schedule, ActionDurations::FusedBackward());
    ASSERT_TRUE(r.ok()) << c.Name() << ": " << r.status();
    const double vm = static_cast<double>(c.v) * c.m;
    EXPECT_EQ(r->makespan, 3.0 * (vm + c.p - 1)) << c.Name();
    for (int s = 0; s < c.p; ++s) {
      EXPECT_EQ(r->bubble_fraction[s], (c.p - 1) / (vm + c.p - 1)) << c.Name() << " stage " << s;
      const double idle = r->makespan - r->busy[s];
      EXPECT_EQ(idle / r->busy[s], (c.p - 1) / vm) << c.Name() << " stage " << s;
    }
  }
}

// Replays with F = B = W = 1 (the zero-bubble paper's setting). Derived here
// and checked for every case:
//   GPipe, 1F1B, interleaved (W right after B): makespan = 3 v m + 2 (p - 1);
//     W is off the critical path, so only F and B (2 units) cost bubble.
//   ZB-H1, m >= p: makespan = 3 m + (p - 1): the paper's bubble
//     (p - 1)(T_F + T_B - T_W) = p - 1, one third of 1F1B's 3 (p - 1) with a
//     fused backward, bubble fraction (p - 1) / (3 m + p - 1).
//   ZB-H1, m < p: makespan = 2 m + 2 p - 1 (too few micro-batches to hide W).
TEST(SimulatorTest, UnitReplayEqualsDerivedBubble) {
  for (const Case& c : AllCases()) {
    const Schedule schedule = *MakeSchedule(c.kind, c.p, c.m, c.v);
    absl::StatusOr<SimulationResult> r = CheckSchedule(schedule);
    ASSERT_TRUE(r.ok()) << c.Name() << ": " << r.status();
    double expected_makespan;
    if (c.kind == ScheduleKind::kZeroBubbleH1) {
      expected_makespan = c.m >= c.p ? 3.0 * c.m + (c.p - 1) : 2.0 * c.m + 2.0 * c.p - 1;
    } else {
      expected_makespan = 3.0 * c.v * c.m + 2.0 * (c.p - 1);
    }
    EXPECT_EQ(r->makespan, expected_makespan) << c.Name();
    const double busy = 3.0 * c.v * c.m;
    for (int s = 0; s < c.p; ++s) {
      EXPECT_EQ(r->bubble_fraction[s], (expected_makespan - busy) / expected_makespan)
          << c.Name() << " stage " << s;
    }
    if (c.kind == ScheduleKind::kZeroBubbleH1 && c.m >= c.p) {
      for (int s = 0; s < c.p; ++s) {
        EXPECT_EQ(r->bubble_fraction[s], (c.p - 1.0) / (3.0 * c.m + c.p - 1)) << c.Name();
      }
      // One third of 1F1B's idle time under the classic fused accounting.
      const Schedule one_f_one_b = *MakeOneFOneBSchedule(c.p, c.m);
      absl::StatusOr<SimulationResult> fused =
          SimulateSchedule(one_f_one_b, ActionDurations::FusedBackward());
      ASSERT_TRUE(fused.ok()) << fused.status();
      EXPECT_EQ(3.0 * (r->makespan - busy), fused->makespan - busy) << c.Name();
    }
  }
}

TEST(SimulatorTest, CommunicationLatencyDelaysBothPipelineFlanks) {
  // GPipe with F = 1, B = 2, W = 0 and latency L: the forward wave reaches the
  // last stage (p - 1)(1 + L) later and the backward wave returns (p - 1)(2 + L)
  // later, so makespan = 3 (m + p - 1) + 2 (p - 1) L.
  ActionDurations durations = ActionDurations::FusedBackward();
  durations.comm_latency = 0.5;
  for (int p : {1, 2, 4}) {
    for (int m : {1, 3, 8}) {
      absl::StatusOr<SimulationResult> r = SimulateSchedule(*MakeGPipeSchedule(p, m), durations);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->makespan, 3.0 * (m + p - 1) + 2.0 * (p - 1) * 0.5) << "p=" << p << " m=" << m;
    }
  }
}

TEST(SimulatorTest, TimingsFollowActionOrder) {
  const Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  absl::StatusOr<SimulationResult> r = CheckSchedule(schedule);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int s = 0; s < 4; ++s) {
    ASSERT_EQ(r->timings[s].size(), schedule.stages[s].size());
    double previous_end = 0.0;
    for (const ActionTiming& t : r->timings[s]) {
      EXPECT_GE(t.start, previous_end);
      EXPECT_GE(t.end, t.start);
      previous_end = t.end;
    }
    EXPECT_LE(previous_end, r->makespan);
  }
}

// --- Broken schedules are rejected with the stage and the action named. ---

size_t FindAction(const std::vector<Action>& actions, const Action& wanted) {
  auto it = std::find(actions.begin(), actions.end(), wanted);
  EXPECT_NE(it, actions.end()) << wanted.ToString();
  return static_cast<size_t>(it - actions.begin());
}

TEST(SimulatorTest, RejectsTransferDeadlock) {
  // Stage 0 waits for the gradient before sending the activation it depends on.
  Schedule schedule = *MakeGPipeSchedule(2, 1);
  std::swap(schedule.stages[0][1], schedule.stages[0][2]);
  absl::Status status = CheckSchedule(schedule).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("deadlocks"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 0 action #1 RECV_GRAD(mb=0, chunk=0, peer=1) waits for SEND_GRAD"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 1 action #0 RECV_ACT(mb=0, chunk=0, peer=0) waits for SEND_ACT"));
}

TEST(SimulatorTest, RejectsComputeOrderDeadlock) {
  // On the last stage, B(0) swapped ahead of F(0).
  Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  std::vector<Action>& last = schedule.stages[3];
  const size_t f = FindAction(last, {ActionKind::kForward, 0, 0, -1});
  const size_t b = FindAction(last, {ActionKind::kBackwardInput, 0, 0, -1});
  std::swap(last[f], last[b]);
  absl::Status status = CheckSchedule(schedule).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("stage 3 action #", f,
                                     " B(mb=0, chunk=0) waits for F(mb=0, chunk=0) of stage 3")));
}

TEST(SimulatorTest, RejectsDroppedWeightPass) {
  Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  std::vector<Action>& stage1 = schedule.stages[1];
  stage1.erase(stage1.begin() + FindAction(stage1, {ActionKind::kBackwardWeight, 2, 0, -1}));
  absl::Status status = CheckSchedule(schedule).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("incomplete (1 passes missing)"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("stage 1 never runs W(mb=2, chunk=0)"));
}

TEST(SimulatorTest, RejectsDuplicatedAction) {
  Schedule schedule = *MakeZeroBubbleH1Schedule(2, 2);
  schedule.stages[0].push_back({ActionKind::kBackwardWeight, 1, 0, -1});
  const size_t index = schedule.stages[0].size() - 1;
  absl::Status status = CheckSchedule(schedule).status();
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("stage 0 action #", index,
                                     " W(mb=1, chunk=0): runs a second time")));
}

TEST(SimulatorTest, RejectsOutOfOrderReceives) {
  // Stage 1 receives micro-batch 1 while micro-batch 0 is first on the channel.
  Schedule schedule = *MakeGPipeSchedule(2, 2);
  std::vector<Action>& stage1 = schedule.stages[1];
  const size_t r0 = FindAction(stage1, {ActionKind::kRecvActivation, 0, 0, 0});
  const size_t r1 = FindAction(stage1, {ActionKind::kRecvActivation, 1, 0, 0});
  std::swap(stage1[r0].micro_batch, stage1[r1].micro_batch);
  absl::Status status = CheckSchedule(schedule).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 1 action #0 RECV_ACT(mb=1, chunk=0, peer=0): the next activation "
                        "from stage 0 is mb=0, chunk=0"));
}

TEST(SimulatorTest, RejectsWrongPeerAndEarlySend) {
  Schedule wrong_peer = *MakeOneFOneBSchedule(3, 3);
  const size_t send = FindAction(wrong_peer.stages[1], {ActionKind::kSendActivation, 0, 0, 2});
  wrong_peer.stages[1][send].peer_stage = 0;
  absl::Status status = CheckSchedule(wrong_peer).status();
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("stage 1 action #", send,
                                     " SEND_ACT(mb=0, chunk=0, peer=0): peer must be stage 2")));

  Schedule early_send = *MakeGPipeSchedule(2, 1);
  std::swap(early_send.stages[0][0], early_send.stages[0][1]);  // SEND_ACT before F.
  status = CheckSchedule(early_send).status();
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 0 action #0 SEND_ACT(mb=0, chunk=0, peer=1): sends data before "
                        "F(mb=0, chunk=0) of stage 0 produced it"));
}

TEST(SimulatorTest, RejectsUnreceivedMessageAndBadIndices) {
  Schedule extra_send = *MakeGPipeSchedule(2, 1);
  extra_send.stages[0].push_back({ActionKind::kSendActivation, 0, 0, 1});
  absl::Status status = CheckSchedule(extra_send).status();
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 0 sends SEND_ACT(mb=0, chunk=0, peer=1) but stage 1 never "
                        "receives it"));

  Schedule bad_mb = *MakeGPipeSchedule(1, 2);
  bad_mb.stages[0][0].micro_batch = 2;
  status = CheckSchedule(bad_mb).status();
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("stage 0 action #0 F(mb=2, chunk=0): micro_batch must be in [0, 2)"));

  Schedule missing_stage = *MakeGPipeSchedule(2, 1);
  missing_stage.stages.pop_back();
  EXPECT_EQ(CheckSchedule(missing_stage).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SimulatorTest, RejectsBadDurations) {
  const Schedule schedule = *MakeGPipeSchedule(2, 2);
  ActionDurations negative;
  negative.backward_input = -1.0;
  EXPECT_EQ(SimulateSchedule(schedule, negative).status().code(),
            absl::StatusCode::kInvalidArgument);
  ActionDurations not_a_number;
  not_a_number.comm_latency = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(SimulateSchedule(schedule, not_a_number).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A replay with per-action durations is the uniform simulation when every
// action of a kind gets that kind's duration, and it moves work when one
// action alone gets longer.
TEST(SimulatorTest, ReplayWithPerActionDurations) {
  const Schedule schedule = *MakeOneFOneBSchedule(4, 8);
  const ActionDurations uniform{1.5, 2.5, 0.5, 0.25};
  std::vector<std::vector<double>> durations(4);
  for (int s = 0; s < 4; ++s) {
    for (const Action& a : schedule.stages[s]) {
      durations[s].push_back(a.kind == ActionKind::kForward         ? uniform.forward
                             : a.kind == ActionKind::kBackwardInput ? uniform.backward_input
                             : a.kind == ActionKind::kBackwardWeight ? uniform.backward_weight
                                                                     : 0.0);
    }
  }
  const SimulationResult expected = *SimulateSchedule(schedule, uniform);
  absl::StatusOr<SimulationResult> replayed = ReplaySchedule(schedule, durations, 0.25);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  EXPECT_EQ(replayed->makespan, expected.makespan);
  EXPECT_EQ(replayed->busy, expected.busy);

  // The last stage's first forward 10 units longer delays everything after it.
  for (size_t i = 0; i < schedule.stages[3].size(); ++i) {
    if (schedule.stages[3][i].kind == ActionKind::kForward) {
      durations[3][i] += 10.0;
      break;
    }
  }
  absl::StatusOr<SimulationResult> slower = ReplaySchedule(schedule, durations, 0.25);
  ASSERT_TRUE(slower.ok()) << slower.status();
  EXPECT_EQ(slower->makespan, expected.makespan + 10.0);

  durations[1].pop_back();
  absl::Status status = ReplaySchedule(schedule, durations).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("for stage 1"));
}

TEST(SimulatorTest, ForwardOnlySchedulesAreCompleteWithoutBackward) {
  for (int p = 1; p <= 4; ++p) {
    for (int v : {1, 2}) {
      absl::StatusOr<Schedule> schedule = MakeForwardOnlySchedule(p, 5, v);
      ASSERT_TRUE(schedule.ok()) << schedule.status();
      absl::StatusOr<SimulationResult> result = CheckSchedule(*schedule);
      ASSERT_TRUE(result.ok()) << result.status();
      for (const Action& a : schedule->stages[0]) {
        EXPECT_TRUE(a.kind == ActionKind::kForward || a.kind == ActionKind::kSendActivation ||
                    a.kind == ActionKind::kRecvActivation)
            << a.ToString();
      }
    }
  }
  Schedule with_backward = *MakeForwardOnlySchedule(1, 1);
  with_backward.stages[0].push_back({ActionKind::kBackwardInput, 0, 0, -1});
  EXPECT_THAT(std::string(CheckSchedule(with_backward).status().message()),
              HasSubstr("a forward-only schedule has no B"));
}

}  // namespace
}  // namespace trident::pipeline
