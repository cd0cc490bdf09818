// The parameters a GptStage builds on each tensor-parallel rank add up to the
// analytic per-rank count (tensor_parallel/param_count.h) exactly, for whole
// models and pipeline stages, with padded vocabularies.

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "tensor_parallel/param_count.h"
#include "tensor_parallel/tp_group.h"
#include "tests/tensor_parallel/stage_shape.h"
#include "transformer/gpt_stage.h"

namespace trident::tp {
namespace {

using test_support::ShapeOf;
using test_support::TinyConfig;
using transformer::GptConfig;
using transformer::GptStage;
using transformer::StageSpec;

// The numel of every parameter, split into shards and replicated ones.
ParameterCount Built(GptStage& stage) {
  ParameterCount c;
  for (Parameter* p : stage.parameters()) {
    (p->layout.replicated() ? c.replicated : c.sharded) += p->value.numel();
    EXPECT_EQ(p->grad.numel(), p->value.numel()) << p->name;
  }
  return c;
}

void ExpectCountsMatch(const GptConfig& config, const StageSpec& spec, int tp_size) {
  SCOPED_TRACE(absl::StrCat("tp=", tp_size, " layers [", spec.first_layer, ", ",
                            spec.first_layer + spec.num_layers, ") padded_vocab=",
                            spec.padded_vocab));
  absl::StatusOr<ParameterCount> want = StageParameterCountPerRank(ShapeOf(config, spec), tp_size);
  ASSERT_TRUE(want.ok()) << want.status();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = tp_size == 1 ? TpGroup() : TpGroup(&world);
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, spec, tp, Device::Cpu()));
    const ParameterCount got = Built(*stage);
    // tp = 1 holds nothing sharded: every layout is "replicated" over one rank.
    EXPECT_EQ(got.total(), want->total()) << "rank " << rank;
    if (tp_size > 1) {
      EXPECT_EQ(got.sharded, want->sharded) << "rank " << rank;
      EXPECT_EQ(got.replicated, want->replicated) << "rank " << rank;
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(GptStageParamCountTest, WholeModelAtEachTp) {
  const GptConfig config = TinyConfig();
  for (int tp : {1, 2, 4}) {
    // Unpadded (tp = 1 only), padded to the next multiple of tp, and Megatron's 128 * tp.
    if (tp == 1) ExpectCountsMatch(config, StageSpec::Whole(config, 11), tp);
    ExpectCountsMatch(config, StageSpec::Whole(config, (11 + tp - 1) / tp * tp), tp);
    ExpectCountsMatch(config, StageSpec::Whole(config, 128 * tp), tp);
  }
}

TEST(GptStageParamCountTest, PipelineStagesAtEachTp) {
  const GptConfig config = TinyConfig();
  for (int tp : {1, 2, 4}) {
    const int64_t padded = 16;
    StageSpec first{0, 1, true, false, padded};
    StageSpec middle{1, 1, false, false, padded};
    StageSpec last{2, 1, false, true, padded};  // Holds its own copy of the tied wte.
    ExpectCountsMatch(config, first, tp);
    ExpectCountsMatch(config, middle, tp);
    ExpectCountsMatch(config, last, tp);
  }
}

// A hand count of the tiny model at tp = 2, padded vocabulary 12, as a check on
// the formula itself: h = 16, f = 32, 3 layers, 8 positions.
TEST(GptStageParamCountTest, HandCountOfTheTinyModel) {
  const GptConfig config = TinyConfig();
  const int64_t wte = 12 / 2 * 16, wpe = 8 * 16;
  const int64_t block = 2 * 16 + (16 * 48 + 48) / 2 + (16 * 16) / 2 + 16 + 2 * 16 +
                        (16 * 32 + 32) / 2 + (32 * 16) / 2 + 16;
  const int64_t ln_f = 2 * 16;
  absl::StatusOr<ParameterCount> c =
      StageParameterCountPerRank(ShapeOf(config, StageSpec::Whole(config, 12)), 2);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->total(), wte + wpe + 3 * block + ln_f);
}

}  // namespace
}  // namespace trident::tp
