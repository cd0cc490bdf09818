#include "pipeline/schedule.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace trident::pipeline {
namespace {

// Compute actions of one stage as "F0 F1 B0 W0 ..." ("F0.1" when v > 1).
std::string ComputeOrder(const Schedule& schedule, int stage) {
  std::string text;
  for (const Action& a : schedule.stages[stage]) {
    if (!IsCompute(a.kind)) continue;
    if (!text.empty()) text += " ";
    text += std::string(ActionKindName(a.kind)) + std::to_string(a.micro_batch);
    if (schedule.num_chunks > 1) text += "." + std::to_string(a.chunk);
  }
  return text;
}

TEST(ScheduleTest, OneFOneBOrderMatchesPipeDreamFlush) {
  absl::StatusOr<Schedule> s = MakeOneFOneBSchedule(2, 3);
  ASSERT_TRUE(s.ok()) << s.status();
  // Stage 0 warms up with p - 0 - 1 = 1 forward; the last stage with none.
  EXPECT_EQ(ComputeOrder(*s, 0), "F0 F1 B0 W0 F2 B1 W1 B2 W2");
  EXPECT_EQ(ComputeOrder(*s, 1), "F0 B0 W0 F1 B1 W1 F2 B2 W2");
}

TEST(ScheduleTest, GPipeRunsAllForwardsFirst) {
  absl::StatusOr<Schedule> s = MakeGPipeSchedule(3, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  for (int stage = 0; stage < 3; ++stage) {
    EXPECT_EQ(ComputeOrder(*s, stage), "F0 F1 B0 W0 B1 W1");
  }
}

TEST(ScheduleTest, ZeroBubbleH1DelaysWeightPassesByStageIndex) {
  absl::StatusOr<Schedule> s = MakeZeroBubbleH1Schedule(2, 3);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(ComputeOrder(*s, 0), "F0 F1 B0 W0 F2 B1 W1 B2 W2");
  EXPECT_EQ(ComputeOrder(*s, 1), "F0 B0 F1 B1 W0 F2 B2 W1 W2");
}

TEST(ScheduleTest, InterleavedFollowsMegatronOrder) {
  absl::StatusOr<Schedule> s = MakeInterleavedSchedule(2, 2, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  // Stage 0 warms up with min((v-1)p + 2(p-1), mv) = 4 forwards: all of them.
  EXPECT_EQ(ComputeOrder(*s, 0), "F0.0 F1.0 F0.1 F1.1 B0.1 W0.1 B1.1 W1.1 B0.0 W0.0 B1.0 W1.0");
  // Stage 1 warms up with 2, then alternates.
  EXPECT_EQ(ComputeOrder(*s, 1), "F0.0 F1.0 F0.1 B0.1 W0.1 F1.1 B1.1 W1.1 B0.0 W0.0 B1.0 W1.0");
}

TEST(ScheduleTest, TransfersSurroundTheirComputeActions) {
  absl::StatusOr<Schedule> s = MakeGPipeSchedule(2, 1);
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<Action> stage0 = {
      {ActionKind::kForward, 0, 0, -1},        {ActionKind::kSendActivation, 0, 0, 1},
      {ActionKind::kRecvGradient, 0, 0, 1},    {ActionKind::kBackwardInput, 0, 0, -1},
      {ActionKind::kBackwardWeight, 0, 0, -1},
  };
  const std::vector<Action> stage1 = {
      {ActionKind::kRecvActivation, 0, 0, 0},  {ActionKind::kForward, 0, 0, -1},
      {ActionKind::kBackwardInput, 0, 0, -1},  {ActionKind::kSendGradient, 0, 0, 0},
      {ActionKind::kBackwardWeight, 0, 0, -1},
  };
  EXPECT_EQ(s->stages[0], stage0);
  EXPECT_EQ(s->stages[1], stage1);
}

TEST(ScheduleTest, InterleavedLastStageForwardsToFirstStageNextChunk) {
  absl::StatusOr<Schedule> s = MakeInterleavedSchedule(2, 2, 2);
  ASSERT_TRUE(s.ok()) << s.status();
  bool found_wraparound_send = false;
  for (const Action& a : s->stages[1]) {
    if (a.kind == ActionKind::kSendActivation && a.chunk == 0) {
      EXPECT_EQ(a.peer_stage, 0);
      found_wraparound_send = true;
    }
    // The last model chunk (chunk 1 of stage 1) sends no activation.
    EXPECT_FALSE(a.kind == ActionKind::kSendActivation && a.chunk == 1);
  }
  EXPECT_TRUE(found_wraparound_send);
  EXPECT_EQ(s->ModelChunk(1, 1), 3);
  EXPECT_EQ(s->StageOfModelChunk(2), 0);
  EXPECT_EQ(s->ChunkOfModelChunk(2), 1);
}

TEST(ScheduleTest, SingleStageHasNoTransfers) {
  absl::StatusOr<Schedule> s = MakeInterleavedSchedule(1, 3, 4);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->stages.size(), 1u);
  EXPECT_EQ(s->stages[0].size(), 3u * 3 * 4);
  for (const Action& a : s->stages[0]) EXPECT_TRUE(IsCompute(a.kind)) << a.ToString();
}

TEST(ScheduleTest, RejectsBadArguments) {
  EXPECT_EQ(MakeOneFOneBSchedule(0, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeGPipeSchedule(2, 0).status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status not_multiple = MakeInterleavedSchedule(4, 6, 2).status();
  EXPECT_EQ(not_multiple.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_multiple.message().find("num_micro_batches = 6"), std::string::npos)
      << not_multiple;
  EXPECT_NE(not_multiple.message().find("multiple of num_stages (4)"), std::string::npos)
      << not_multiple;
  absl::Status virtual_gpipe = MakeSchedule(ScheduleKind::kGPipe, 2, 4, 2).status();
  EXPECT_EQ(virtual_gpipe.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(virtual_gpipe.message().find("gpipe"), std::string::npos) << virtual_gpipe;
  EXPECT_EQ(MakeInterleavedSchedule(2, 4, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScheduleTest, ParsesScheduleNames) {
  for (ScheduleKind kind : {ScheduleKind::kGPipe, ScheduleKind::kOneFOneB,
                            ScheduleKind::kInterleaved1F1B, ScheduleKind::kZeroBubbleH1}) {
    absl::StatusOr<ScheduleKind> parsed = ParseScheduleKind(ScheduleKindName(kind));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(*ParseScheduleKind("ZB-H1"), ScheduleKind::kZeroBubbleH1);
  absl::Status bad = ParseScheduleKind("2f2b").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("\"2f2b\""), std::string::npos) << bad;
}

TEST(ScheduleTest, ActionToStringNamesKindAndPeer) {
  EXPECT_EQ((Action{ActionKind::kBackwardWeight, 3, 1, -1}).ToString(), "W(mb=3, chunk=1)");
  EXPECT_EQ((Action{ActionKind::kRecvGradient, 2, 0, 3}).ToString(),
            "RECV_GRAD(mb=2, chunk=0, peer=3)");
}

}  // namespace
}  // namespace trident::pipeline
