#include "topology/layout_validation.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "topology/layout_names.h"

namespace trident::topology {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A GPT-2-small-like model that every layout below divides.
ModelDimensions Model() {
  return ModelDimensions{.num_layers = 12,
                         .num_heads = 12,
                         .hidden_size = 768,
                         .ffn_hidden_size = 3072,
                         .vocab_size = 50257,
                         .seq_length = 1024};
}

ParallelLayout Layout(int tp, int pp, int dp) {
  ParallelLayout layout;
  layout.set_tensor_parallel(tp);
  layout.set_pipeline_parallel(pp);
  layout.set_data_parallel(dp);
  return layout;
}

// The message of the first broken rule ("" when the layout is valid).
std::string Violation(const ParallelLayout& layout, int world, const ModelDimensions& model) {
  const absl::Status status = ValidateLayout(layout, world, model);
  if (status.ok()) return "";
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ValidateLayoutTest, AcceptsValidLayouts) {
  EXPECT_EQ(Violation(ParallelLayout(), 1, Model()), "");
  EXPECT_EQ(Violation(Layout(2, 2, 2), 8, Model()), "");
  EXPECT_EQ(Violation(Layout(4, 3, 1), 12, Model()), "");
  ParallelLayout interleaved = Layout(2, 2, 1);
  interleaved.set_schedule(INTERLEAVED_1F1B);
  interleaved.set_virtual_pipeline_stages(3);
  interleaved.set_num_micro_batches(4);
  interleaved.set_sequence_parallel(true);
  interleaved.set_gradient_compression(GradientCompression::TOPK);  // Needs zero_stage=0.
  interleaved.set_topk_ratio(1.0f);
  interleaved.set_global_batch_size(4);
  EXPECT_EQ(Violation(interleaved, 4, Model()), "");
  // 1F1B, GPipe and ZB-H1 run with fewer micro-batches than stages.
  ParallelLayout few = Layout(1, 4, 1);
  few.set_num_micro_batches(1);
  for (PipelineSchedule schedule : {GPIPE, ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
    few.set_schedule(schedule);
    EXPECT_EQ(Violation(few, 4, Model()), "");
  }
}

TEST(ValidateLayoutTest, SizesMustBePositive) {
  EXPECT_EQ(Violation(Layout(0, 1, 1), 1, Model()), "tensor_parallel=0 must be positive");
  EXPECT_EQ(Violation(Layout(1, -2, 1), 1, Model()), "pipeline_parallel=-2 must be positive");
  EXPECT_EQ(Violation(Layout(1, 1, 0), 1, Model()), "data_parallel=0 must be positive");
  ParallelLayout layout;
  layout.set_virtual_pipeline_stages(0);
  EXPECT_EQ(Violation(layout, 1, Model()), "virtual_pipeline_stages=0 must be positive");
  layout = ParallelLayout();
  layout.set_micro_batch_size(0);
  EXPECT_EQ(Violation(layout, 1, Model()), "micro_batch_size=0 must be positive");
  layout = ParallelLayout();
  layout.set_num_micro_batches(-1);
  EXPECT_EQ(Violation(layout, 1, Model()), "num_micro_batches=-1 must be positive");
}

TEST(ValidateLayoutTest, ModelDimensionsMustBePositive) {
  ModelDimensions model = Model();
  model.num_layers = 0;
  EXPECT_EQ(Violation(ParallelLayout(), 1, model), "num_layers=0 must be positive (model dimension)");
  model = Model();
  model.vocab_size = -5;
  EXPECT_EQ(Violation(ParallelLayout(), 1, model), "vocab_size=-5 must be positive (model dimension)");
  model = Model();
  model.seq_length = -1;
  EXPECT_EQ(Violation(ParallelLayout(), 1, model),
            "seq_length=-1 must be positive, or 0 when unknown");
}

TEST(ValidateLayoutTest, GridProductMustEqualWorldSize) {
  EXPECT_EQ(Violation(Layout(2, 2, 2), 16, Model()),
            "tensor_parallel=2 x pipeline_parallel=2 x data_parallel=2 = 8 must equal the world "
            "size 16 (every rank holds one grid position)");
  EXPECT_EQ(Violation(Layout(1, 1, 1), 0, Model()), "world size 0 must be positive");
}

TEST(ValidateLayoutTest, RankOrderMustBeWellFormed) {
  ParallelLayout layout = Layout(2, 1, 1);
  layout.set_rank_order("tp-ep-pp");
  EXPECT_EQ(Violation(layout, 2, Model()),
            "rank_order=\"tp-ep-pp\": unknown axis \"ep\" (each of tp, dp, pp exactly once, joined "
            "by '-', fastest varying first, e.g. \"tp-dp-pp\")");
  layout.set_rank_order("dp-dp-tp");
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("axis \"dp\" appears more than once"));
  layout.set_rank_order("dp-tp");
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("axis \"pp\" is missing"));
}

TEST(ValidateLayoutTest, TensorParallelMustDivideHeads) {
  ModelDimensions model = Model();
  model.num_heads = 8;
  model.hidden_size = 96 * 8;
  EXPECT_EQ(Violation(Layout(3, 1, 1), 3, model),
            "tensor_parallel=3 must divide num_heads=8 (each tp rank owns whole attention heads)");
}

TEST(ValidateLayoutTest, TensorParallelMustDivideHidden) {
  ModelDimensions model = Model();
  model.num_heads = 4;
  model.hidden_size = 130;
  EXPECT_EQ(Violation(Layout(4, 1, 1), 4, model),
            "tensor_parallel=4 must divide hidden_size=130 (the attention projections split the "
            "hidden dimension evenly across tp ranks)");
}

TEST(ValidateLayoutTest, TensorParallelMustDivideFfn) {
  ModelDimensions model = Model();
  model.ffn_hidden_size = 3070;
  EXPECT_EQ(Violation(Layout(4, 1, 1), 4, model),
            "tensor_parallel=4 must divide ffn_hidden_size=3070 (the MLP's first linear layer is "
            "split by columns and its second by rows)");
}

TEST(ValidateLayoutTest, VocabularyIsPaddedNeverRejected) {
  ModelDimensions model = Model();
  model.vocab_size = 50257;  // Prime to every tp.
  EXPECT_EQ(Violation(Layout(4, 1, 1), 4, model), "");
  EXPECT_EQ(PaddedVocabSize(50257, 1), 50304);  // GPT-2's well-known padded size.
  EXPECT_EQ(PaddedVocabSize(50257, 2), 50432);
  EXPECT_EQ(PaddedVocabSize(50257, 8), 51200);
  EXPECT_EQ(PaddedVocabSize(128, 1), 128);
  EXPECT_EQ(PaddedVocabSize(129, 1), 256);
  EXPECT_EQ(PaddedVocabSize(1, 3), 384);
  for (int tp = 1; tp <= 16; ++tp) {
    for (int64_t vocab : {1, 100, 127, 128, 129, 1000, 32000, 50257}) {
      const int64_t padded = PaddedVocabSize(vocab, tp);
      EXPECT_EQ(padded % (128 * tp), 0);
      EXPECT_GE(padded, vocab);
      EXPECT_LT(padded - vocab, 128 * tp) << "padding is minimal";
    }
  }
}

TEST(ValidateLayoutTest, EvenSplitMustDivideLayers) {
  EXPECT_EQ(Violation(Layout(1, 5, 1), 5, Model()),
            "pipeline_parallel=5 x virtual_pipeline_stages=1 = 5 must divide num_layers=12 (each "
            "stage chunk gets an equal number of layers; list an uneven split in "
            "layers_per_stage)");
  ParallelLayout layout = Layout(1, 4, 1);
  layout.set_schedule(INTERLEAVED_1F1B);
  layout.set_virtual_pipeline_stages(2);
  layout.set_num_micro_batches(4);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "pipeline_parallel=4 x virtual_pipeline_stages=2 = 8 must divide num_layers=12 (each "
            "stage chunk gets an equal number of layers; list an uneven split in "
            "layers_per_stage)");
}

TEST(ValidateLayoutTest, MoreStageChunksThanLayersHasNoSplitToHintAt) {
  ParallelLayout layout = Layout(1, 16, 1);
  EXPECT_EQ(Violation(layout, 16, Model()),
            "pipeline_parallel=16 x virtual_pipeline_stages=1 = 16 stage chunks exceed "
            "num_layers=12 (every stage chunk holds at least one layer)");
  layout = Layout(1, 4, 1);
  layout.set_schedule(INTERLEAVED_1F1B);
  layout.set_virtual_pipeline_stages(4);
  layout.set_num_micro_batches(4);
  EXPECT_THAT(Violation(layout, 4, Model()),
              AllOf(HasSubstr("= 16 stage chunks exceed num_layers=12"),
                    Not(HasSubstr("layers_per_stage"))));
}

TEST(ValidateLayoutTest, ExplicitSplitRules) {
  ParallelLayout layout = Layout(1, 5, 1);
  for (int n : {3, 3, 2, 2, 2}) layout.add_layers_per_stage(n);
  EXPECT_EQ(Violation(layout, 5, Model()), "");

  layout.add_layers_per_stage(1);
  EXPECT_EQ(Violation(layout, 5, Model()),
            "layers_per_stage has 6 entries but needs pipeline_parallel=5 x "
            "virtual_pipeline_stages=1 = 5 (one per stage chunk)");

  layout.clear_layers_per_stage();
  for (int n : {4, 0, 4, 2, 2}) layout.add_layers_per_stage(n);
  EXPECT_EQ(Violation(layout, 5, Model()),
            "layers_per_stage[1]=0 must be at least 1 (every stage chunk holds a layer)");

  layout.clear_layers_per_stage();
  for (int n : {3, 3, 3, 2, 2}) layout.add_layers_per_stage(n);
  EXPECT_EQ(Violation(layout, 5, Model()),
            "layers_per_stage sums to 13 but num_layers=12 (the split must cover every layer "
            "once)");
}

TEST(ValidateLayoutTest, VirtualStagesNeedTheInterleavedSchedule) {
  ParallelLayout layout = Layout(1, 2, 1);
  layout.set_virtual_pipeline_stages(2);
  layout.set_num_micro_batches(4);
  EXPECT_EQ(Violation(layout, 2, Model()),
            "virtual_pipeline_stages=2 needs schedule interleaved, not 1f1b (only the interleaved "
            "schedule runs several model chunks per stage)");
  layout.set_schedule(ZERO_BUBBLE_H1);
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("not zb-h1"));
  layout.set_schedule(GPIPE);
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("not gpipe"));
  layout.set_schedule(INTERLEAVED_1F1B);
  EXPECT_EQ(Violation(layout, 2, Model()), "");
}

TEST(ValidateLayoutTest, InterleavedNeedsMicroBatchesInGroupsOfStages) {
  ParallelLayout layout = Layout(1, 4, 1);
  layout.set_schedule(INTERLEAVED_1F1B);
  layout.set_virtual_pipeline_stages(3);
  layout.set_num_micro_batches(6);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "num_micro_batches=6 must be a multiple of pipeline_parallel=4 with schedule "
            "interleaved (micro-batches enter the virtual stages in groups of "
            "pipeline_parallel)");
  layout.set_num_micro_batches(2);  // Fewer than the stages.
  EXPECT_THAT(Violation(layout, 4, Model()), HasSubstr("num_micro_batches=2 must be a multiple"));
  layout.set_num_micro_batches(8);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  // One chunk per stage would silently run 1F1B.
  layout.set_virtual_pipeline_stages(1);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "schedule interleaved with pipeline_parallel=4 needs virtual_pipeline_stages >= 2, "
            "not 1 (add --virtual_stages=2 or more, or use schedule 1f1b)");
  // One stage: nothing to interleave across, any count works.
  ParallelLayout single = Layout(1, 1, 1);
  single.set_schedule(INTERLEAVED_1F1B);
  single.set_virtual_pipeline_stages(2);
  single.set_num_micro_batches(3);
  EXPECT_EQ(Violation(single, 1, Model()), "");
}

TEST(ValidateLayoutTest, GlobalBatchMustMatchWhenGiven) {
  ParallelLayout layout = Layout(1, 1, 2);
  layout.set_micro_batch_size(2);
  layout.set_num_micro_batches(4);
  layout.set_global_batch_size(32);
  EXPECT_EQ(Violation(layout, 2, Model()),
            "global_batch_size=32 must equal micro_batch_size=2 x num_micro_batches=4 x "
            "data_parallel=2 = 16 (leave num_micro_batches unset to derive it from "
            "global_batch_size)");
  layout.set_global_batch_size(16);
  EXPECT_EQ(Violation(layout, 2, Model()), "");
}

TEST(DeriveMicroBatchesTest, DividesTheGlobalBatchAmongReplicasAndMicroBatches) {
  ParallelLayout layout = Layout(1, 1, 2);
  layout.set_micro_batch_size(2);
  layout.set_global_batch_size(16);
  ASSERT_TRUE(DeriveMicroBatches(&layout).ok());
  EXPECT_EQ(layout.num_micro_batches(), 4);  // 16 / (2 x 2)
  EXPECT_EQ(Violation(layout, 2, Model()), "");

  // A count that is set is left to rule 7; no global batch, nothing derived.
  layout.set_num_micro_batches(3);
  ASSERT_TRUE(DeriveMicroBatches(&layout).ok());
  EXPECT_EQ(layout.num_micro_batches(), 3);
  ParallelLayout plain = Layout(1, 1, 2);
  ASSERT_TRUE(DeriveMicroBatches(&plain).ok());
  EXPECT_FALSE(plain.has_num_micro_batches());
}

TEST(DeriveMicroBatchesTest, RefusesWithTheArithmetic) {
  ParallelLayout layout = Layout(1, 1, 3);
  layout.set_micro_batch_size(2);
  layout.set_global_batch_size(16);
  const ParallelLayout before = layout;
  const absl::Status status = DeriveMicroBatches(&layout);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "global_batch_size=16 is not a multiple of micro_batch_size=2 x data_parallel=3 = 6 "
            "(num_micro_batches = global_batch_size / (micro_batch_size x data_parallel) must be "
            "a whole number)");
  EXPECT_FALSE(layout.has_num_micro_batches());
  EXPECT_EQ(layout.DebugString(), before.DebugString());
}

TEST(ValidateLayoutTest, SequenceParallelNeedsTensorParallel) {
  ParallelLayout layout = Layout(1, 1, 2);
  layout.set_sequence_parallel(true);
  EXPECT_EQ(Violation(layout, 2, Model()),
            "sequence_parallel=true needs tensor_parallel > 1, got tensor_parallel=1 (it splits "
            "activations along the sequence across the tp group)");
}

TEST(ValidateLayoutTest, SequenceParallelNeedsTensorParallelDividingSequence) {
  ParallelLayout layout = Layout(4, 1, 1);
  layout.set_sequence_parallel(true);
  ModelDimensions model = Model();
  model.seq_length = 1022;
  EXPECT_EQ(Violation(layout, 4, model),
            "tensor_parallel=4 must divide seq_length=1022 with sequence_parallel=true (each tp "
            "rank holds an equal slice of the sequence)");
  model.seq_length = 0;  // Unknown: skipped.
  EXPECT_EQ(Violation(layout, 4, model), "");
}

TEST(ValidateLayoutTest, ZeroStageInRange) {
  ParallelLayout layout;
  layout.set_zero_stage(4);
  EXPECT_EQ(Violation(layout, 1, Model()),
            "zero_stage=4 must be in 0..3 (0 off, 1 shards optimizer state, 2 also gradients, 3 "
            "also parameters)");
  layout.set_zero_stage(-1);
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("zero_stage=-1 must be in 0..3"));
}

TEST(ValidateLayoutTest, CpuOffloadNeedsAZeroStage) {
  ParallelLayout layout;
  layout.set_cpu_offload(true);
  EXPECT_THAT(Violation(layout, 1, Model()),
              HasSubstr("cpu_offload=true needs zero_stage >= 1, got zero_stage=0"));
  for (int stage : {1, 2, 3}) {
    layout.set_zero_stage(stage);
    EXPECT_TRUE(ValidateLayout(layout, 1, Model()).ok()) << stage;
  }
}

TEST(ValidateLayoutTest, TopkRatioInRange) {
  ParallelLayout layout;
  layout.set_gradient_compression(GradientCompression::TOPK);
  layout.set_topk_ratio(0.0f);
  EXPECT_EQ(Violation(layout, 1, Model()),
            "topk_ratio=0 must be in (0, 1] with gradient_compression topk (the fraction of each "
            "bucket sent)");
  layout.set_topk_ratio(1.5f);
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("topk_ratio=1.5 must be in (0, 1]"));
  layout.set_topk_ratio(std::nanf(""));
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("must be in (0, 1]"));
  layout.set_topk_ratio(0.05f);
  EXPECT_EQ(Violation(layout, 1, Model()), "");
  // The ratio only matters with TOPK.
  layout.set_gradient_compression(GradientCompression::INT8);
  layout.set_topk_ratio(0.0f);
  EXPECT_EQ(Violation(layout, 1, Model()), "");
}

TEST(ValidateLayoutTest, CompressionRefusesZeroByNameForEveryMode) {
  for (GradientCompression::Method method :
       {GradientCompression::BF16, GradientCompression::FP16, GradientCompression::INT8,
        GradientCompression::TOPK, GradientCompression::POWERSGD}) {
    ParallelLayout layout = Layout(1, 1, 2);
    layout.set_gradient_compression(method);
    EXPECT_EQ(Violation(layout, 2, Model()), "") << CompressionName(method);
    layout.set_zero_stage(1);
    EXPECT_THAT(Violation(layout, 2, Model()),
                HasSubstr(absl::StrCat("gradient_compression=", CompressionName(method),
                                       " needs zero_stage=0, got zero_stage=1 (")));
  }
}

TEST(ValidateLayoutTest, DpAllReduceCombinations) {
  ParallelLayout layout = Layout(1, 1, 4);
  layout.set_dp_allreduce(DpAllReduce::TREE);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  layout.set_zero_stage(2);
  EXPECT_THAT(Violation(layout, 4, Model()),
              HasSubstr("dp_allreduce=tree needs zero_stage=0, got zero_stage=2"));
  layout.set_zero_stage(0);
  layout.set_gradient_compression(GradientCompression::INT8);
  EXPECT_THAT(Violation(layout, 4, Model()),
              HasSubstr("dp_allreduce=tree does not combine with gradient_compression=int8"));
  layout.set_dp_allreduce(DpAllReduce::RING);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  layout.set_gradient_compression(GradientCompression::TOPK);
  EXPECT_THAT(Violation(layout, 4, Model()),
              HasSubstr("dp_allreduce=ring does not combine with gradient_compression=topk"));
}

TEST(ValidateLayoutTest, DpSyncModesAndTheirRefusals) {
  for (DpSync::Mode mode : {DpSync::LOCAL_SGD, DpSync::GOSSIP}) {
    SCOPED_TRACE(DpSyncName(mode));
    const std::string flag = absl::StrCat("dp_sync=", DpSyncName(mode));
    // Any tp x pp grid: replicas mix shard by shard over their dp group.
    ParallelLayout layout = Layout(2, 2, 2);
    layout.set_dp_sync(mode);
    EXPECT_EQ(Violation(layout, 8, Model()), "");
    layout.set_zero_stage(1);
    EXPECT_EQ(Violation(layout, 8, Model()),
              absl::StrCat(flag, " needs zero_stage=0, got zero_stage=1 (each replica steps "
                                 "alone, so it needs its whole optimizer state, which ZeRO "
                                 "shards across the replicas)"));
    layout.set_zero_stage(0);
    layout.set_gradient_compression(GradientCompression::INT8);
    EXPECT_EQ(Violation(layout, 8, Model()),
              absl::StrCat(flag, " does not combine with gradient_compression=int8 (replicas do "
                                 "not sum gradients, so there is nothing to compress)"));
    layout.set_gradient_compression(GradientCompression::NONE);
    layout.set_dp_allreduce(DpAllReduce::RING);
    EXPECT_EQ(Violation(layout, 8, Model()),
              mode == DpSync::GOSSIP
                  ? "dp_sync=gossip does not combine with dp_allreduce=ring (gossip moves "
                    "parameters point to point; no all-reduce runs)"
                  : "");
  }
  ParallelLayout layout = Layout(1, 1, 4);
  layout.set_dp_sync(DpSync::LOCAL_SGD);
  layout.set_local_sgd_steps(0);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "local_sgd_steps=0 must be >= 1 with dp_sync=local_sgd (the steps between "
            "parameter averages)");
  layout.set_local_sgd_steps(4);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  layout.set_dp_sync(DpSync::GOSSIP);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "local_sgd_steps=4 needs dp_sync=local_sgd, got dp_sync=gossip");
  layout.clear_local_sgd_steps();
  EXPECT_EQ(Violation(layout, 4, Model()), "");
}

TEST(ValidateLayoutTest, ParameterServerFieldsAndRefusals) {
  ParallelLayout layout = Layout(1, 1, 4);
  layout.set_dp_sync(DpSync::PS);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  layout.set_ps_servers(2);
  layout.set_ps_staleness(3);
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  layout.set_ps_servers(0);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "ps_servers=0 must be >= 1 with dp_sync=ps (the ranks, beyond the grid, that hold "
            "the parameters)");
  layout.set_ps_servers(1);
  layout.set_ps_staleness(-1);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "ps_staleness=-1 must be >= 0 with dp_sync=ps (the steps a worker may run ahead of "
            "the slowest)");
  layout.set_ps_staleness(0);
  layout.set_zero_stage(1);
  EXPECT_THAT(Violation(layout, 4, Model()), HasSubstr("dp_sync=ps needs zero_stage=0"));
  layout.set_zero_stage(0);
  layout.set_gradient_compression(GradientCompression::TOPK);
  EXPECT_THAT(Violation(layout, 4, Model()),
              HasSubstr("dp_sync=ps does not combine with gradient_compression=topk"));
  layout.set_gradient_compression(GradientCompression::NONE);
  layout.set_dp_allreduce(DpAllReduce::TREE);
  EXPECT_EQ(Violation(layout, 4, Model()),
            "dp_sync=ps does not combine with dp_allreduce=tree (ps moves parameters point to "
            "point; no all-reduce runs)");
  layout.set_dp_allreduce(DpAllReduce::NATIVE);
  ParallelLayout grid = Layout(2, 1, 2);
  grid.set_dp_sync(DpSync::PS);
  EXPECT_EQ(Violation(grid, 4, Model()),
            "dp_sync=ps needs tensor_parallel=1 and pipeline_parallel=1, got 2 x 1 (a worker "
            "pushes one whole flat gradient; model-parallel shards are not routed to servers)");
  layout.set_dp_sync(DpSync::GOSSIP);
  EXPECT_EQ(Violation(layout, 4, Model()), "ps_servers=1 needs dp_sync=ps, got dp_sync=gossip");
  layout.clear_ps_servers();
  EXPECT_EQ(Violation(layout, 4, Model()), "ps_staleness=0 needs dp_sync=ps, got dp_sync=gossip");
  layout.clear_ps_staleness();
  EXPECT_EQ(Violation(layout, 4, Model()), "");
  EXPECT_EQ(ParseDpSyncName("ps").value(), DpSync::PS);
}

TEST(ValidateLayoutTest, TopkAdaptiveAndStaticScaleParameters) {
  ParallelLayout layout = Layout(1, 1, 2);
  layout.set_topk_adaptive(true);
  EXPECT_EQ(Violation(layout, 2, Model()),
            "topk_adaptive=true needs gradient_compression=topk, got gradient_compression=none");
  layout.set_gradient_compression(GradientCompression::TOPK);
  EXPECT_EQ(Violation(layout, 2, Model()), "");
  layout.set_topk_min_ratio(0.5f);
  EXPECT_THAT(Violation(layout, 2, Model()),
              HasSubstr("topk_min_ratio=0.5 and topk_max_ratio=0.1 must satisfy"));
  layout.set_topk_min_ratio(0.01f);
  layout.set_topk_sparsity_ema(1.0f);
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("topk_sparsity_ema=1 must be in [0, 1)"));
  layout.set_topk_sparsity_ema(0.9f);
  layout.set_topk_sparsity_threshold(std::nanf(""));
  EXPECT_THAT(Violation(layout, 2, Model()), HasSubstr("topk_sparsity_threshold=nan"));

  ParallelLayout powersgd = Layout(1, 1, 2);
  powersgd.set_gradient_compression(GradientCompression::POWERSGD);
  powersgd.set_dp_allreduce(DpAllReduce::TREE);  // Its P and Q all-reduces take any algorithm.
  EXPECT_EQ(Violation(powersgd, 2, Model()), "");
  powersgd.set_powersgd_rank(0);
  EXPECT_EQ(Violation(powersgd, 2, Model()),
            "powersgd_rank=0 must be >= 1 with gradient_compression=powersgd (the rank of each "
            "2-D gradient's approximation)");

  ParallelLayout fp16 = Layout(1, 1, 2);
  fp16.set_gradient_compression(GradientCompression::FP16);
  fp16.set_compression_scaling(GradientCompression::STATIC);
  EXPECT_EQ(Violation(fp16, 2, Model()), "");  // The default 1024.
  fp16.set_compression_static_scale(1000.0f);
  EXPECT_EQ(Violation(fp16, 2, Model()),
            "compression_static_scale=1000 must be a positive power of two with "
            "gradient_compression=fp16 and compression_scaling=static (so that scaling is exact)");
}

TEST(ValidateLayoutTest, GradBucketPositive) {
  ParallelLayout layout;
  layout.set_grad_bucket_mb(0.0f);
  EXPECT_EQ(Violation(layout, 1, Model()), "grad_bucket_mb=0 must be a positive number of MiB");
  layout.set_grad_bucket_mb(-0.5f);
  EXPECT_EQ(Violation(layout, 1, Model()),
            "grad_bucket_mb=-0.5 must be a positive number of MiB");
  layout.set_grad_bucket_mb(std::numeric_limits<float>::infinity());
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("must be a positive number of MiB"));
  layout.set_grad_bucket_mb(std::nanf(""));
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("must be a positive number of MiB"));
}

TEST(ValidateLayoutTest, ReportsTheFirstBrokenRuleInDocumentedOrder) {
  // Broken: data_parallel, the world size, tp vs heads, and zero_stage.
  // Sizes come first...
  ParallelLayout layout = Layout(5, 1, 0);
  layout.set_zero_stage(7);
  EXPECT_EQ(Violation(layout, 7, Model()), "data_parallel=0 must be positive");
  // ... then the grid, before the model rules ...
  layout.set_data_parallel(1);
  EXPECT_THAT(Violation(layout, 7, Model()), HasSubstr("= 5 must equal the world size 7"));
  // ... then tensor parallel, before zero_stage ...
  EXPECT_THAT(Violation(layout, 5, Model()), HasSubstr("tensor_parallel=5 must divide num_heads=12"));
  // ... which is reported once the rest is fixed.
  layout.set_tensor_parallel(1);
  EXPECT_THAT(Violation(layout, 1, Model()), HasSubstr("zero_stage=7 must be in 0..3"));
}

}  // namespace
}  // namespace trident::topology
