#include "training/memory_estimate.h"

#include <memory>

#include "core/exec_context.h"
#include "core/parameter.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tensor_parallel/tp_group.h"
#include "transformer/gpt_stage.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;

TrainConfig Config() {
  TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(256);
  model->set_context_length(64);
  model->set_num_layers(4);
  model->set_num_heads(4);
  model->set_hidden_size(64);
  config.mutable_data()->set_seq_length(64);
  config.mutable_layout()->set_micro_batch_size(2);
  config.mutable_layout()->set_num_micro_batches(4);
  return config;
}

// The parameter bytes are those of the model the trainer builds.
TEST(MemoryEstimateTest, ParametersAreTheBuiltModels) {
  const TrainConfig config = Config();
  absl::StatusOr<MemoryEstimate> estimate = EstimateRankMemory(config);
  ASSERT_TRUE(estimate.ok()) << estimate.status();
  const int64_t padded_vocab = 256;  // already a multiple of 128
  absl::StatusOr<std::unique_ptr<transformer::GptStage>> stage = transformer::GptStage::Create(
      config.model(), transformer::StageSpec::Whole(config.model(), padded_vocab), tp::TpGroup(),
      Device::Cpu());
  ASSERT_TRUE(stage.ok()) << stage.status();
  int64_t elements = 0;
  for (const Parameter* p : (*stage)->parameters()) elements += p->value.numel();
  EXPECT_EQ(estimate->parameter_bytes, 4 * elements);
  EXPECT_EQ(estimate->gradient_bytes, estimate->parameter_bytes);
  EXPECT_EQ(estimate->optimizer_state_bytes, 2 * estimate->parameter_bytes);
  EXPECT_GT(estimate->activation_bytes, 0);

  // Mixed precision: 16-bit values, fp32 gradients, masters + moments.
  for (Precision precision : {BF16, FP16}) {
    TrainConfig mixed = config;
    mixed.set_precision(precision);
    absl::StatusOr<MemoryEstimate> m = EstimateRankMemory(mixed);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->parameter_bytes, 2 * elements);
    EXPECT_EQ(m->gradient_bytes, 4 * elements);
    EXPECT_EQ(m->optimizer_state_bytes, 3 * 4 * elements);
  }
}

TEST(MemoryEstimateTest, ActivationsFollowTheSchedule) {
  TrainConfig config = Config();
  config.mutable_layout()->set_pipeline_parallel(2);
  config.mutable_layout()->set_schedule(topology::GPIPE);
  const MemoryEstimate gpipe = *EstimateRankMemory(config);
  config.mutable_layout()->set_schedule(topology::ONE_F_ONE_B);
  const MemoryEstimate one_f_one_b = *EstimateRankMemory(config);
  // GPipe keeps all 4 micro-batches, 1F1B at most pp = 2 (stage 0's blocks;
  // the last stage's logits come on top of either).
  EXPECT_GT(gpipe.activation_bytes, one_f_one_b.activation_bytes);
  EXPECT_EQ(gpipe.parameter_bytes, one_f_one_b.parameter_bytes);
  // Sequence parallelism holds less per rank than plain tensor parallelism.
  config.mutable_layout()->set_pipeline_parallel(1);
  config.mutable_layout()->set_tensor_parallel(2);
  const MemoryEstimate tp2 = *EstimateRankMemory(config);
  config.mutable_layout()->set_sequence_parallel(true);
  EXPECT_LT(EstimateRankMemory(config)->activation_bytes, tp2.activation_bytes);
}

TEST(MemoryEstimateTest, WhatCannotFitIsRefusedWithTheEstimate) {
  TrainConfig config = Config();
  config.mutable_layout()->set_micro_batch_size(1000000);
  const MemoryEstimate huge = *EstimateRankMemory(config);
  const absl::Status status = CheckMemoryFits(huge, 1, int64_t{24} << 30);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("GB per rank (parameters"));
  EXPECT_THAT(status.message(), HasSubstr("more than the 25.8 GB of memory available"));
  // 100000 small replicas in one process do not fit either; one does.
  const MemoryEstimate small = *EstimateRankMemory(Config());
  EXPECT_FALSE(CheckMemoryFits(small, 100000, int64_t{24} << 30).ok());
  EXPECT_TRUE(CheckMemoryFits(small, 1, int64_t{24} << 30).ok());
  EXPECT_TRUE(CheckMemoryFits(huge, 1, 0).ok()) << "unknown memory: no refusal";
  EXPECT_GT(AvailableMemoryBytes(), 0);
}

}  // namespace
}  // namespace trident::training
