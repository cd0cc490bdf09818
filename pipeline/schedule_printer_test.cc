#include "pipeline/schedule_printer.h"

#include <string>

#include "gtest/gtest.h"
#include "pipeline/schedule.h"

namespace trident::pipeline {
namespace {

TEST(SchedulePrinterTest, UnitTimelineShowsIdleSlots) {
  // Worked by hand: stage 1 starts one unit late; stage 0 waits for each
  // gradient from stage 1. Makespan 8, bubble 2/8 on both stages.
  absl::StatusOr<std::string> text = RenderUnitTimeline(*MakeGPipeSchedule(2, 2));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "stage 0: F0 F1 .. .. B0 W0 B1 W1\n"
            "stage 1: .. F0 F1 B0 W0 B1 W1 ..\n"
            "stage 0 bubble: 0.2500\n"
            "stage 1 bubble: 0.2500\n");
}

TEST(SchedulePrinterTest, ActionListsWithAndWithoutTransfers) {
  const Schedule schedule = *MakeOneFOneBSchedule(2, 1);
  EXPECT_EQ(FormatActionLists(schedule, /*include_transfers=*/false),
            "stage 0: F0 B0 W0\n"
            "stage 1: F0 B0 W0\n");
  EXPECT_EQ(FormatActionLists(schedule, /*include_transfers=*/true),
            "stage 0: F0 SEND_ACT(mb=0, chunk=0, peer=1) RECV_GRAD(mb=0, chunk=0, peer=1) B0 W0\n"
            "stage 1: RECV_ACT(mb=0, chunk=0, peer=0) F0 B0 SEND_GRAD(mb=0, chunk=0, peer=0) W0\n");
}

TEST(SchedulePrinterTest, InterleavedLabelsCarryTheChunk) {
  const Schedule schedule = *MakeInterleavedSchedule(1, 1, 2);
  EXPECT_EQ(FormatActionLists(schedule, false), "stage 0: F0.0 F0.1 B0.1 W0.1 B0.0 W0.0\n");
  absl::StatusOr<std::string> text = RenderUnitTimeline(schedule);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "stage 0: F0.0 F0.1 B0.1 W0.1 B0.0 W0.0\n"
            "stage 0 bubble: 0.0000\n");
}

TEST(SchedulePrinterTest, BrokenScheduleIsNotRendered) {
  Schedule schedule = *MakeGPipeSchedule(2, 1);
  schedule.stages[1].pop_back();  // Drops W(0) of stage 1.
  EXPECT_FALSE(RenderUnitTimeline(schedule).ok());
}

}  // namespace
}  // namespace trident::pipeline
