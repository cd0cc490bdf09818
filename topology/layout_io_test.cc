#include "topology/layout_io.h"

#include "topology/layout_validation.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"

namespace trident::topology {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseLayoutTextTest, EmptyTextGivesTheDefaults) {
  absl::StatusOr<ParallelLayout> layout = ParseLayoutText("");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->tensor_parallel(), 1);
  EXPECT_EQ(layout->pipeline_parallel(), 1);
  EXPECT_EQ(layout->data_parallel(), 1);
  EXPECT_EQ(layout->virtual_pipeline_stages(), 1);
  EXPECT_EQ(layout->micro_batch_size(), 1);
  EXPECT_EQ(layout->num_micro_batches(), 1);
  EXPECT_EQ(layout->schedule(), ONE_F_ONE_B);
  EXPECT_EQ(layout->rank_order(), "tp-dp-pp");
  EXPECT_FALSE(layout->sequence_parallel());
  EXPECT_EQ(layout->zero_stage(), 0);
  EXPECT_EQ(layout->recompute(), Recompute::NONE);
  EXPECT_EQ(layout->gradient_compression(), GradientCompression::NONE);
  EXPECT_FLOAT_EQ(layout->topk_ratio(), 0.01f);
  EXPECT_TRUE(layout->overlap_grad_reduce());
  EXPECT_FLOAT_EQ(layout->grad_bucket_mb(), 25.0f);
  EXPECT_EQ(layout->layers_per_stage_size(), 0);
  EXPECT_FALSE(layout->has_tensor_parallel()) << "proto2 presence: defaults are not 'set'";
}

TEST(ParseLayoutTextTest, ParsesEveryField) {
  absl::StatusOr<ParallelLayout> layout = ParseLayoutText(R"pb(
    # A comment.
    tensor_parallel: 2
    pipeline_parallel: 4
    data_parallel: 3
    rank_order: "pp-tp-dp"
    micro_batch_size: 2
    num_micro_batches: 8
    global_batch_size: 48
    schedule: INTERLEAVED_1F1B
    virtual_pipeline_stages: 2
    layers_per_stage: [ 1, 2, 2, 1 ]
    layers_per_stage: 1
    layers_per_stage: 1
    layers_per_stage: 1
    layers_per_stage: 1
    sequence_parallel: true
    zero_stage: 2
    recompute: SELECTIVE
    gradient_compression: TOPK
    topk_ratio: 0.05
    overlap_grad_reduce: false
    grad_bucket_mb: 40
  )pb");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->tensor_parallel(), 2);
  EXPECT_EQ(layout->pipeline_parallel(), 4);
  EXPECT_EQ(layout->data_parallel(), 3);
  EXPECT_EQ(layout->rank_order(), "pp-tp-dp");
  EXPECT_EQ(layout->micro_batch_size(), 2);
  EXPECT_EQ(layout->num_micro_batches(), 8);
  EXPECT_EQ(layout->global_batch_size(), 48);
  EXPECT_EQ(layout->schedule(), INTERLEAVED_1F1B);
  EXPECT_EQ(layout->virtual_pipeline_stages(), 2);
  EXPECT_THAT(layout->layers_per_stage(), ::testing::ElementsAre(1, 2, 2, 1, 1, 1, 1, 1));
  EXPECT_TRUE(layout->sequence_parallel());
  EXPECT_EQ(layout->zero_stage(), 2);
  EXPECT_EQ(layout->recompute(), Recompute::SELECTIVE);
  EXPECT_EQ(layout->gradient_compression(), GradientCompression::TOPK);
  EXPECT_FLOAT_EQ(layout->topk_ratio(), 0.05f);
  EXPECT_FALSE(layout->overlap_grad_reduce());
  EXPECT_FLOAT_EQ(layout->grad_bucket_mb(), 40.0f);
}

// Each bad input names the source, the 1-based line and column, and keeps the
// parser's own explanation.
TEST(ParseLayoutTextTest, UnknownFieldNamesFileLineColumnAndField) {
  absl::StatusOr<ParallelLayout> layout =
      ParseLayoutText("tensor_parallel: 2\n  tensor_paralel: 4\n", "bad.textproto");
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(layout.status().message()),
            "bad.textproto:2:3: Message type \"trident.topology.ParallelLayout\" has no field "
            "named \"tensor_paralel\".");
}

TEST(ParseLayoutTextTest, BadEnumValue) {
  absl::StatusOr<ParallelLayout> layout =
      ParseLayoutText("schedule: ONE_F_TWO_B\n", "bad_enum.textproto");
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(layout.status().message()),
            "bad_enum.textproto:1:11: Unknown enumeration value of \"ONE_F_TWO_B\" for field "
            "\"schedule\".");
}

TEST(ParseLayoutTextTest, PositionPointsAtTheNameEvenWithTabsAndRepeats) {
  // The parser reports the token after the culprit; the position is moved
  // back to the culprit, skipping partial-word matches and earlier lines.
  absl::StatusOr<ParallelLayout> layout = ParseLayoutText(
      "# FULLY and FULL_X are not FUL\n\trecompute: FUL zero_stage: 1\n", "tabs.textproto");
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(std::string(layout.status().message()),
            "tabs.textproto:2:20: Unknown enumeration value of \"FUL\" for field \"recompute\".");
}

TEST(ParseLayoutTextTest, SyntaxError) {
  absl::StatusOr<ParallelLayout> layout =
      ParseLayoutText("tensor_parallel: 2\npipeline_parallel 4\n", "syntax.textproto");
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(layout.status().message()), StartsWith("syntax.textproto:2:19: "));
  EXPECT_THAT(std::string(layout.status().message()), HasSubstr("Expected \":\""));
}

TEST(ParseLayoutTextTest, WrongTypeAndRepeatedScalar) {
  absl::StatusOr<ParallelLayout> text_for_int = ParseLayoutText("zero_stage: \"two\"\n");
  ASSERT_FALSE(text_for_int.ok());
  EXPECT_THAT(std::string(text_for_int.status().message()), StartsWith("<layout text>:1:13: "));
  EXPECT_THAT(std::string(text_for_int.status().message()), HasSubstr("Expected integer"));

  absl::StatusOr<ParallelLayout> twice = ParseLayoutText("zero_stage: 1\nzero_stage: 2\n");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(std::string(twice.status().message()),
            "<layout text>:2:1: Non-repeated field \"zero_stage\" is specified multiple times.");
}

TEST(LoadLayoutFromFileTest, ReadsAFileAndNamesItInErrors) {
  const std::string good = ::testing::TempDir() + "/good.textproto";
  std::ofstream(good) << "tensor_parallel: 2\nschedule: ZERO_BUBBLE_H1\n";
  absl::StatusOr<ParallelLayout> layout = LoadLayoutFromFile(good);
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->tensor_parallel(), 2);
  EXPECT_EQ(layout->schedule(), ZERO_BUBBLE_H1);

  const std::string bad = ::testing::TempDir() + "/bad.textproto";
  std::ofstream(bad) << "# header\n\ndata_paralel: 2\n";
  layout = LoadLayoutFromFile(bad);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(std::string(layout.status().message()),
            bad + ":3:1: Message type \"trident.topology.ParallelLayout\" has no field named "
                  "\"data_paralel\".");
}

TEST(LoadLayoutFromFileTest, MissingFileIsNotFound) {
  const std::string path = ::testing::TempDir() + "/does_not_exist.textproto";
  absl::StatusOr<ParallelLayout> layout = LoadLayoutFromFile(path);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(layout.status().message()),
            "cannot open layout file " + path + ": No such file or directory");
}

TEST(LoadLayoutFromFileTest, DirectoryIsRejected) {
  const std::string path = ::testing::TempDir();
  absl::StatusOr<ParallelLayout> layout = LoadLayoutFromFile(path);
  ASSERT_FALSE(layout.ok());
  EXPECT_EQ(layout.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(layout.status().message()),
            "layout file " + path + " is a directory, not a textproto file");
}

TEST(LayoutToTextTest, RoundTrips) {
  ParallelLayout layout;
  layout.set_tensor_parallel(4);
  layout.set_schedule(GPIPE);
  layout.add_layers_per_stage(3);
  layout.set_gradient_compression(GradientCompression::INT8);
  const std::string text = LayoutToText(layout);
  EXPECT_THAT(text, HasSubstr("schedule: GPIPE"));
  EXPECT_THAT(text, HasSubstr("gradient_compression: INT8"));
  absl::StatusOr<ParallelLayout> parsed = ParseLayoutText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), layout.SerializeAsString());
}

TEST(LayoutNamesTest, ScheduleNamesRoundTrip) {
  for (PipelineSchedule schedule : {GPIPE, ONE_F_ONE_B, INTERLEAVED_1F1B, ZERO_BUBBLE_H1}) {
    absl::StatusOr<PipelineSchedule> parsed = ParseScheduleName(ScheduleName(schedule));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, schedule);
  }
  EXPECT_EQ(ScheduleName(GPIPE), "gpipe");
  EXPECT_EQ(ScheduleName(ONE_F_ONE_B), "1f1b");
  EXPECT_EQ(ScheduleName(INTERLEAVED_1F1B), "interleaved");
  EXPECT_EQ(ScheduleName(ZERO_BUBBLE_H1), "zb-h1");
}

TEST(LayoutNamesTest, UnknownNamesListTheValidOnes) {
  absl::StatusOr<PipelineSchedule> schedule = ParseScheduleName("2f2b");
  ASSERT_FALSE(schedule.ok());
  EXPECT_EQ(schedule.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(schedule.status().message()),
            "unknown schedule \"2f2b\" (valid: \"gpipe\", \"1f1b\", \"interleaved\", \"zb-h1\")");
  // Schedule names are shared with the pipeline package, which ignores case.
  EXPECT_EQ(*ParseScheduleName("1F1B"), ONE_F_ONE_B);
  EXPECT_EQ(std::string(ParseRecomputeName("some").status().message()),
            "unknown recompute policy \"some\" (valid: \"none\", \"selective\", \"full\")");
  EXPECT_EQ(std::string(ParseCompressionName("fp8").status().message()),
            "unknown gradient compression \"fp8\" (valid: \"none\", \"bf16\", \"topk\", \"int8\", "
            "\"fp16\", \"powersgd\")");
  for (Recompute::Policy policy : {Recompute::NONE, Recompute::SELECTIVE, Recompute::FULL}) {
    EXPECT_EQ(*ParseRecomputeName(RecomputeName(policy)), policy);
  }
  for (GradientCompression::Method method :
       {GradientCompression::NONE, GradientCompression::BF16, GradientCompression::TOPK,
        GradientCompression::INT8}) {
    EXPECT_EQ(*ParseCompressionName(CompressionName(method)), method);
  }
}

TEST(ApplyOverridesTest, OverridesOnlyTheGivenFields) {
  ParallelLayout layout = *ParseLayoutText("tensor_parallel: 2\nnum_micro_batches: 4\nzero_stage: 1\n");
  LayoutOverrides overrides;
  EXPECT_TRUE(overrides.empty());
  ASSERT_TRUE(ApplyOverrides(overrides, &layout).ok());
  EXPECT_EQ(layout.tensor_parallel(), 2);

  overrides.pp = 4;
  overrides.dp = 3;
  overrides.micro_batches = 16;
  overrides.micro_batch_size = 2;
  overrides.virtual_stages = 2;
  overrides.schedule = "interleaved";
  overrides.sequence_parallel = true;
  overrides.zero_stage = 0;  // Explicitly back to the default.
  overrides.cpu_offload = true;
  overrides.rank_order = "tp-pp-dp";
  overrides.recompute = "full";
  overrides.gradient_compression = "bf16";
  EXPECT_FALSE(overrides.empty());
  ASSERT_TRUE(ApplyOverrides(overrides, &layout).ok());
  EXPECT_EQ(layout.tensor_parallel(), 2) << "not overridden";
  EXPECT_EQ(layout.pipeline_parallel(), 4);
  EXPECT_EQ(layout.data_parallel(), 3);
  EXPECT_EQ(layout.num_micro_batches(), 16);
  EXPECT_EQ(layout.micro_batch_size(), 2);
  EXPECT_EQ(layout.virtual_pipeline_stages(), 2);
  EXPECT_EQ(layout.schedule(), INTERLEAVED_1F1B);
  EXPECT_TRUE(layout.sequence_parallel());
  EXPECT_EQ(layout.zero_stage(), 0);
  EXPECT_TRUE(layout.has_zero_stage());
  EXPECT_TRUE(layout.cpu_offload());
  EXPECT_EQ(layout.rank_order(), "tp-pp-dp");
  EXPECT_EQ(layout.recompute(), Recompute::FULL);
  EXPECT_EQ(layout.gradient_compression(), GradientCompression::BF16);

  LayoutOverrides tp_only;
  tp_only.tp = 8;
  ASSERT_TRUE(ApplyOverrides(tp_only, &layout).ok());
  EXPECT_EQ(layout.tensor_parallel(), 8);
  EXPECT_EQ(layout.pipeline_parallel(), 4);
}

// With a global batch, a new dp or micro-batch size re-derives the
// micro-batch count (DeriveMicroBatches), unless --micro_batches says it.
TEST(ApplyOverridesTest, GlobalBatchKeepsTheBatchWhenDpChanges) {
  ParallelLayout layout =
      *ParseLayoutText("data_parallel: 2\nglobal_batch_size: 8\nnum_micro_batches: 4\n");
  LayoutOverrides tp_only;
  tp_only.tp = 2;
  ASSERT_TRUE(ApplyOverrides(tp_only, &layout).ok());
  EXPECT_EQ(layout.num_micro_batches(), 4) << "dp and the batch did not change";

  LayoutOverrides dp;
  dp.dp = 4;
  ASSERT_TRUE(ApplyOverrides(dp, &layout).ok());
  EXPECT_FALSE(layout.has_num_micro_batches());
  ASSERT_TRUE(DeriveMicroBatches(&layout).ok());
  EXPECT_EQ(layout.num_micro_batches(), 2);

  LayoutOverrides explicit_count;
  explicit_count.global_batch_size = 16;
  explicit_count.micro_batches = 3;
  ASSERT_TRUE(ApplyOverrides(explicit_count, &layout).ok());
  EXPECT_EQ(layout.num_micro_batches(), 3) << "rule 7 then reports 1 x 3 x 4 != 16";
}

TEST(ApplyOverridesTest, GradientSyncFlags) {
  ParallelLayout layout;
  LayoutOverrides overrides;
  overrides.gradient_compression = "powersgd";
  overrides.powersgd_rank = 2;
  overrides.topk_ratio = 0.05f;
  overrides.topk_adaptive = true;
  overrides.compression_scaling = "static";
  overrides.dp_allreduce = "tree";
  ASSERT_TRUE(ApplyOverrides(overrides, &layout).ok());
  EXPECT_EQ(layout.gradient_compression(), GradientCompression::POWERSGD);
  EXPECT_EQ(layout.powersgd_rank(), 2);
  EXPECT_EQ(layout.topk_ratio(), 0.05f);
  EXPECT_TRUE(layout.topk_adaptive());
  EXPECT_EQ(layout.compression_scaling(), GradientCompression::STATIC);
  EXPECT_EQ(layout.dp_allreduce(), DpAllReduce::TREE);
  EXPECT_EQ(layout.dp_sync(), DpSync::SYNC);

  LayoutOverrides sync_modes;
  sync_modes.dp_sync = "local_sgd";
  sync_modes.local_sgd_steps = 4;
  EXPECT_FALSE(sync_modes.empty());
  ASSERT_TRUE(ApplyOverrides(sync_modes, &layout).ok());
  EXPECT_EQ(layout.dp_sync(), DpSync::LOCAL_SGD);
  EXPECT_EQ(layout.local_sgd_steps(), 4);

  ParallelLayout ps_layout;
  LayoutOverrides ps;
  ps.dp_sync = "ps";
  ps.ps_servers = 3;
  ps.ps_staleness = 2;
  EXPECT_FALSE(ps.empty());
  ASSERT_TRUE(ApplyOverrides(ps, &ps_layout).ok());
  EXPECT_EQ(ps_layout.dp_sync(), DpSync::PS);
  EXPECT_EQ(ps_layout.ps_servers(), 3);
  EXPECT_EQ(ps_layout.ps_staleness(), 2);

  const std::string before = layout.SerializeAsString();
  LayoutOverrides bad;
  bad.dp_allreduce = "butterfly";
  EXPECT_EQ(std::string(ApplyOverrides(bad, &layout).message()),
            "unknown dp all-reduce algorithm \"butterfly\" (valid: \"native\", \"ring\", "
            "\"tree\")");
  bad.dp_allreduce.reset();
  bad.dp_sync = "async";
  EXPECT_EQ(std::string(ApplyOverrides(bad, &layout).message()),
            "unknown dp sync mode \"async\" (valid: \"sync\", \"local_sgd\", \"gossip\", "
            "\"ps\")");
  bad.dp_sync.reset();
  bad.compression_scaling = "auto";
  EXPECT_EQ(std::string(ApplyOverrides(bad, &layout).message()),
            "unknown compression scaling \"auto\" (valid: \"dynamic\", \"static\")");
  EXPECT_EQ(layout.SerializeAsString(), before);
}

TEST(ApplyOverridesTest, BadNameFailsAndLeavesLayoutUntouched) {
  ParallelLayout layout = *ParseLayoutText("tensor_parallel: 2\n");
  const std::string before = layout.SerializeAsString();
  LayoutOverrides overrides;
  overrides.tp = 4;
  overrides.schedule = "zero-bubble";
  const absl::Status status = ApplyOverrides(overrides, &layout);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "unknown schedule \"zero-bubble\" (valid: \"gpipe\", \"1f1b\", \"interleaved\", "
            "\"zb-h1\")");
  EXPECT_EQ(layout.SerializeAsString(), before);
}

}  // namespace
}  // namespace trident::topology
