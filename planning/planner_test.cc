#include "planning/planner.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tensor_parallel/param_count.h"
#include "training/memory_estimate.h"
#include "training/train_config.h"

namespace trident::planning {
namespace {

// One device kind with exact arithmetic: no GEMM overhead, full efficiency,
// memory so fast that elementwise work and the optimizer step cost ~nothing.
Hardware IdealHardware() {
  Hardware hw;
  hw.set_device_name("ideal");
  hw.set_fp32_flops(1e12);
  hw.set_bf16_flops(4e12);
  hw.set_memory_bytes(80e9);
  hw.set_memory_bandwidth_bytes_per_s(1e30);
  hw.set_memory_efficiency(1.0);
  hw.set_devices_per_node(8);
  hw.mutable_intra_node()->set_alpha_s(1e-5);
  hw.mutable_intra_node()->set_bandwidth_bytes_per_s(1e11);
  hw.mutable_inter_node()->set_alpha_s(1e-5);
  hw.mutable_inter_node()->set_bandwidth_bytes_per_s(1e10);
  hw.set_gemm_peak_efficiency(1.0);
  hw.set_gemm_overhead_s(0);
  return hw;
}

training::TrainConfig SmallConfig() {
  training::TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(256);
  model->set_context_length(64);
  model->set_num_layers(4);
  model->set_num_heads(4);
  model->set_hidden_size(128);
  config.mutable_data()->set_seq_length(64);
  config.mutable_layout()->set_micro_batch_size(2);
  config.mutable_layout()->set_num_micro_batches(3);
  return config;
}

double SerialParams(const training::TrainConfig& config) {
  tp::StageShape shape;
  shape.vocab_size = 256;
  shape.padded_vocab = 256;
  shape.positions = 64;
  shape.hidden = 128;
  shape.ffn_hidden = 512;
  shape.num_heads = 4;
  shape.num_layers = config.model().num_layers();
  auto count = tp::StageParameterCountPerRank(shape, 1);
  EXPECT_TRUE(count.ok());
  return static_cast<double>(count->total());
}

TEST(RingAllReduce, AlphaBeta) {
  LinkClass link;
  link.set_alpha_s(1e-5);
  link.set_bandwidth_bytes_per_s(1e9);
  // 2(n-1) alpha + 2(n-1)/n bytes / bw = 6e-5 + 1.5e-3.
  EXPECT_NEAR(RingAllReduceSeconds(4, 1e6, link), 1.56e-3, 1e-12);
  EXPECT_NEAR(RingAllReduceSeconds(2, 1e6, link), 2e-5 + 1e-3, 1e-12);
  EXPECT_EQ(RingAllReduceSeconds(1, 1e6, link), 0.0);
  // All-gather: half the all-reduce.
  EXPECT_NEAR(RingAllGatherSeconds(4, 1e6, link), 0.78e-3, 1e-12);
}

TEST(GemmCurve, OverheadPlusPeakEfficiency) {
  Hardware hw = IdealHardware();
  hw.set_gemm_peak_efficiency(0.5);
  hw.set_gemm_overhead_s(1e-5);
  EXPECT_NEAR(GemmSeconds(1e9, 1e12, hw), 1e-5 + 2e-3, 1e-12);
  EXPECT_EQ(GemmSeconds(0, 1e12, hw), 0.0);
}

TEST(Memory, PerZeroStageAndPrecision) {
  training::TrainConfig config = SmallConfig();
  const double P = SerialParams(config);
  auto plan = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_DOUBLE_EQ(plan->memory.parameters, 4 * P);
  EXPECT_DOUBLE_EQ(plan->memory.gradients, 4 * P);
  EXPECT_DOUBLE_EQ(plan->memory.optimizer_state, 8 * P);  // 16 bytes/param in all

  auto mixed = PlanStep(config, IdealHardware(), training::BF16);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_DOUBLE_EQ(mixed->memory.parameters, 2 * P);
  EXPECT_DOUBLE_EQ(mixed->memory.gradients, 4 * P);  // fp32 gradients
  EXPECT_DOUBLE_EQ(mixed->memory.optimizer_state, 12 * P);  // DeepSpeed's K = 12
  EXPECT_LT(mixed->memory.activations, plan->memory.activations);

  config.mutable_layout()->set_data_parallel(4);
  const double d = 4;
  for (int zero = 0; zero <= 3; ++zero) {
    config.mutable_layout()->set_zero_stage(zero);
    auto z = PlanStep(config, IdealHardware(), training::BF16);
    ASSERT_TRUE(z.ok()) << z.status();
    EXPECT_DOUBLE_EQ(z->memory.optimizer_state, zero >= 1 ? 12 * std::ceil(P / d) : 12 * P)
        << zero;
    if (zero <= 1) {
      EXPECT_DOUBLE_EQ(z->memory.gradients, 4 * P) << zero;
      EXPECT_DOUBLE_EQ(z->memory.parameters, 2 * P) << zero;
    }
    // ZeRO 1 reduce-scatters in place: no buffer beside the full buckets.
    EXPECT_EQ(z->memory.communication_buffers, 0) << zero;
    EXPECT_DOUBLE_EQ(z->memory.total(), z->memory.parameters + z->memory.gradients +
                                            z->memory.optimizer_state + z->memory.activations +
                                            z->memory.communication_buffers);
  }
}

// ZeRO 2 at dp 4 by hand (fp32, one stage): wte (V x h = 256 x 128) is kept
// in full, the rest is sharded over 4, and the pool holds 2 buffers of the
// largest bucket. Buckets hold whole layers up to the largest layer, a block
// (12h^2 + 13h): head (2h pooled) + a block exceeds it, so every block is a
// bucket of its own and the largest is one block. ZeRO 3 adds to the values'
// shards a block and the next one gathered at once.
TEST(Memory, ZeroTwoThreeBucketPoolByHand) {
  training::TrainConfig config = SmallConfig();
  config.mutable_layout()->set_data_parallel(4);
  const double P = SerialParams(config);
  const double wte = 256 * 128, block = 12 * 128 * 128 + 13 * 128;
  config.mutable_layout()->set_zero_stage(2);
  auto two = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_DOUBLE_EQ(two->memory.gradients, 4 * (std::ceil((P - wte) / 4) + wte + 2 * block));
  EXPECT_DOUBLE_EQ(two->memory.parameters, 4 * P);
  EXPECT_DOUBLE_EQ(two->memory.optimizer_state, 8 * std::ceil(P / 4));
  EXPECT_EQ(two->memory.communication_buffers, 0);
  config.mutable_layout()->set_zero_stage(3);
  auto three = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_DOUBLE_EQ(three->memory.gradients, two->memory.gradients);
  EXPECT_DOUBLE_EQ(three->memory.parameters, 4 * (std::ceil(P / 4) + 2 * block));
}

// The planner's parameters, gradients and optimizer state are
// training::EstimateStageMemory's (the estimate checked against measured
// memory) for the stage it reports, in the precision it plans.
TEST(Memory, MatchesTheTrainersEstimate) {
  struct Case {
    int tp, pp, dp, zero;
    bool sp;
    training::Precision precision;
  };
  const Case cases[] = {
      {1, 1, 4, 2, false, training::FP32}, {1, 1, 2, 3, false, training::BF16},
      {1, 2, 2, 2, false, training::BF16}, {2, 2, 2, 3, true, training::FP32},
      {2, 1, 2, 2, true, training::BF16},  {1, 4, 2, 3, false, training::FP32},
      {2, 1, 2, 1, true, training::FP32},  {1, 2, 2, 0, false, training::BF16},
  };
  for (const Case& c : cases) {
    training::TrainConfig config = SmallConfig();
    config.mutable_layout()->set_tensor_parallel(c.tp);
    config.mutable_layout()->set_pipeline_parallel(c.pp);
    config.mutable_layout()->set_data_parallel(c.dp);
    config.mutable_layout()->set_zero_stage(c.zero);
    config.mutable_layout()->set_sequence_parallel(c.sp);
    config.mutable_layout()->set_num_micro_batches(4);
    const std::string name = absl::StrCat("tp ", c.tp, " pp ", c.pp, " dp ", c.dp, " zero ",
                                          c.zero, " ", training::PrecisionName(c.precision));
    auto plan = PlanStep(config, IdealHardware(), c.precision);
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.status();
    config.set_precision(c.precision);
    auto estimate = training::EstimateStageMemory(config, plan->memory.stage);
    ASSERT_TRUE(estimate.ok()) << name << ": " << estimate.status();
    EXPECT_EQ(plan->memory.parameters, static_cast<double>(estimate->parameter_bytes)) << name;
    EXPECT_EQ(plan->memory.gradients, static_cast<double>(estimate->gradient_bytes)) << name;
    EXPECT_EQ(plan->memory.optimizer_state,
              static_cast<double>(estimate->optimizer_state_bytes))
        << name;
    EXPECT_GT(plan->memory.gradients, 0) << name;
  }
}

TEST(Memory, RecomputeShrinksActivations) {
  training::TrainConfig config = SmallConfig();
  auto none = PlanStep(config, IdealHardware(), training::FP32);
  config.mutable_layout()->set_recompute(topology::Recompute::SELECTIVE);
  auto selective = PlanStep(config, IdealHardware(), training::FP32);
  config.mutable_layout()->set_recompute(topology::Recompute::FULL);
  auto full = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(none.ok() && selective.ok() && full.ok());
  EXPECT_LT(selective->memory.activations, none->memory.activations);
  EXPECT_LT(full->memory.activations, selective->memory.activations);
  // Recomputation costs time.
  EXPECT_GT(full->step_time_s, none->step_time_s);
}

// tp = pp = dp = 1: nothing to communicate, nothing idle; the step is all the
// GEMM FLOPs over the rate.
TEST(StepTime, SerialIsFlopsOverRate) {
  training::TrainConfig config = SmallConfig();
  auto plan = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const double L = 4, h = 128, f = 512, T = 64, V = 256, m = 3;
  const double N = 2 * T;  // tokens per micro-batch
  const double flops =
      m * (L * (6 * N * (4 * h * h + 2 * h * f) + 12 * N * T * h) + 6 * N * h * V);
  EXPECT_NEAR(plan->step_time_s, flops / 1e12, 1e-9 * flops / 1e12);
  EXPECT_NEAR(plan->hardware_flops_per_step, flops, 1e-6 * flops);
  EXPECT_NEAR(plan->bubble_fraction, 0.0, 1e-12);
  EXPECT_EQ(plan->dp_reduce_s, 0.0);
  EXPECT_NEAR(plan->tokens_per_s, m * N / plan->step_time_s, 1e-6);
}

// The bubble comes from replaying the layout's schedule: none without
// stages, (p - 1) / (m + p - 1) for 1F1B with equal stages and free links when
// each stage's work is F + B + W, smaller with interleaving.
TEST(StepTime, PipelineBubbleFromReplay) {
  training::TrainConfig config = SmallConfig();
  config.mutable_model()->set_vocab_size(128);  // head small next to 2 layers
  config.mutable_layout()->set_num_micro_batches(8);
  auto serial = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(serial.ok()) << serial.status();
  EXPECT_NEAR(serial->bubble_fraction, 0.0, 1e-12);

  config.mutable_layout()->set_pipeline_parallel(2);
  auto one_f_one_b = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(one_f_one_b.ok()) << one_f_one_b.status();
  // Within a few percent of (p - 1) / (m + p - 1) = 1/9 (the head makes the
  // last stage a little longer, the free W off the critical path shorter).
  EXPECT_NEAR(one_f_one_b->bubble_fraction, 1.0 / 9, 0.05);
  // The pipeline does the serial work on two devices: the makespan is at
  // least half the serial step.
  EXPECT_GT(one_f_one_b->pipeline_makespan_s, 0.5 * serial->pipeline_makespan_s);

  config.mutable_layout()->set_schedule(topology::INTERLEAVED_1F1B);
  config.mutable_layout()->set_virtual_pipeline_stages(2);
  auto interleaved = PlanStep(config, IdealHardware(), training::FP32);
  ASSERT_TRUE(interleaved.ok()) << interleaved.status();
  EXPECT_LT(interleaved->pipeline_makespan_s, one_f_one_b->pipeline_makespan_s);
}

// Ranks sharing cores: one rank computes on every core (the trainer's
// default threads), and 8 one-thread ranks on 2 cores take at least all their
// busy time over 2 cores, whatever the pipeline's bubbles.
TEST(StepTime, RanksSharingCoresQueueForThem) {
  Hardware cpu = IdealHardware();
  cpu.set_devices_per_node(1024);
  cpu.set_cores_per_node(2);
  cpu.mutable_intra_node()->set_alpha_s(0);
  cpu.mutable_intra_node()->set_bandwidth_bytes_per_s(1e30);
  training::TrainConfig config = SmallConfig();
  config.mutable_layout()->set_num_micro_batches(8);
  auto own = PlanStep(config, IdealHardware(), training::FP32);
  auto serial = PlanStep(config, cpu, training::FP32);
  auto one_thread = PlanStep(config, cpu, training::FP32, /*threads_per_rank=*/1);
  ASSERT_TRUE(own.ok() && serial.ok() && one_thread.ok());
  // Two threads: twice one core's rate; the cores are never oversubscribed.
  EXPECT_NEAR(serial->step_time_s, own->step_time_s / 2, 1e-9);
  EXPECT_NEAR(one_thread->step_time_s, own->step_time_s, 1e-9);
  EXPECT_NEAR(serial->shared_cores_step_s, serial->step_time_s, 1e-9);

  // 2 x 2 x 2 on 2 cores, one thread each: the busy core-seconds of 8 ranks
  // (with free links, the serial work plus nothing: each rank does 1/8 of it,
  // tp splits GEMMs, pp layers, dp rows) over 2 cores, i.e. at least 4x one
  // rank's share, well above the pipeline's own makespan.
  config.mutable_layout()->set_tensor_parallel(2);
  config.mutable_layout()->set_pipeline_parallel(2);
  config.mutable_layout()->set_data_parallel(2);
  config.mutable_layout()->set_num_micro_batches(4);
  auto grid = PlanStep(config, cpu, training::FP32);
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_GT(grid->shared_cores_step_s, grid->pipeline_makespan_s);
  EXPECT_EQ(grid->step_time_s, grid->shared_cores_step_s);
  // The serial job's work over 2 cores (the padded vocabulary and the
  // replicated head under tp make it a little more, never less).
  EXPECT_GE(grid->shared_cores_step_s, own->step_time_s / 2 * (1 - 1e-9));
  EXPECT_LT(grid->shared_cores_step_s, own->step_time_s / 2 * 1.3);
  // MFU over the 2 cores the 8 threads can occupy.
  EXPECT_NEAR(grid->mfu * 2 * 1e12,
              grid->model_flops_per_token * grid->tokens_per_s, 1e-6 * grid->mfu * 2e12);
  EXPECT_FALSE(PlanStep(config, cpu, training::FP32, -1).ok());
}

TEST(StepTime, DataParallelExposedOnlyBeyondLastBackward) {
  training::TrainConfig config = SmallConfig();
  config.mutable_layout()->set_data_parallel(4);
  Hardware slow = IdealHardware();
  slow.mutable_intra_node()->set_bandwidth_bytes_per_s(1e6);  // reduction dominates
  config.mutable_layout()->set_overlap_grad_reduce(false);
  auto serial = PlanStep(config, slow, training::FP32);
  config.mutable_layout()->set_overlap_grad_reduce(true);
  auto overlapped = PlanStep(config, slow, training::FP32);
  ASSERT_TRUE(serial.ok() && overlapped.ok());
  EXPECT_EQ(serial->dp_exposed_s, serial->dp_reduce_s);
  EXPECT_LT(overlapped->dp_exposed_s, overlapped->dp_reduce_s);
  EXPECT_GT(overlapped->dp_exposed_s, 0.0);
  EXPECT_LT(overlapped->step_time_s, serial->step_time_s);
}

TEST(Plan, InvalidLayoutIsAnError) {
  training::TrainConfig config = SmallConfig();
  config.mutable_layout()->set_tensor_parallel(3);  // does not divide 4 heads
  EXPECT_FALSE(PlanStep(config, IdealHardware(), training::FP32).ok());
  EXPECT_FALSE(PlanStep(SmallConfig(), IdealHardware(), training::FP16).ok());  // no fp16 rate
  EXPECT_FALSE(ParsePrecision("fp8").ok());
}

TEST(Plan, JsonKeys) {
  auto plan = PlanStep(SmallConfig(), IdealHardware(), training::FP32);
  ASSERT_TRUE(plan.ok());
  const std::string json = PlanToJson(*plan);
  for (const char* key :
       {"\"step_time_s\"", "\"tokens_per_s\"", "\"mfu\"", "\"memory_bytes_per_rank\"",
        "\"parameters\"", "\"gradients\"", "\"optimizer_state\"", "\"activations\"",
        "\"total\""}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(PlanToText(*plan).find("step_time_s"), std::string::npos);
}

}  // namespace
}  // namespace trident::planning
