// Activation recomputation changes memory, not arithmetic: through the
// trainer's own step, a layout trained with recompute selective or full has
// bitwise the gradients (after step 1), losses and parameters (after the last
// step) of the same layout keeping every activation. Serial, tp 2 with
// sequence parallelism, a ZB-H1 pipeline (W long after B: what W needs is kept
// from the recomputing B), and 3D with ZeRO 3 (values gathered again for the
// recomputed forward).

#include <cstdint>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "tests/common/serial_comparison.h"
#include "topology/layout.pb.h"

namespace trident::testing {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}

void ExpectBitwise(const TensorsByName& got, const TensorsByName& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [name, values] : want) {
    auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << what << " " << name;
    ASSERT_EQ(it->second.size(), values.size()) << what << " " << name;
    for (size_t i = 0; i < values.size(); ++i) {
      if (Bits(it->second[i]) != Bits(values[i])) {
        EXPECT_EQ(Bits(it->second[i]), Bits(values[i]))
            << what << " " << name << "[" << i << "]: " << it->second[i] << " vs " << values[i];
        break;
      }
    }
  }
}

class RecomputeBitwise : public ::testing::TestWithParam<LayoutRow> {};

TEST_P(RecomputeBitwise, SameBitsAsKeepingEverything) {
  const LayoutRow row = GetParam();
  absl::StatusOr<TrainedRun> none = TrainLayout(EquivalenceConfig(row.ToLayout(), /*steps=*/3));
  ASSERT_TRUE(none.ok()) << none.status();
  for (auto policy : {topology::Recompute::SELECTIVE, topology::Recompute::FULL}) {
    LayoutRow with = row;
    with.recompute = policy;
    const training::TrainConfig config = EquivalenceConfig(with.ToLayout(), /*steps=*/3);
    SCOPED_TRACE(LayoutName(config.layout()));
    absl::StatusOr<TrainedRun> run = TrainLayout(config);
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->losses.size(), none->losses.size());
    for (size_t s = 0; s < run->losses.size(); ++s) {
      EXPECT_EQ(Bits(run->losses[s]), Bits(none->losses[s])) << "loss of step " << s + 1;
    }
    ExpectBitwise(run->grads_after_step1, none->grads_after_step1, "gradient");
    ExpectBitwise(run->params_after_last, none->params_after_last, "parameter");
    EXPECT_EQ(Bits(run->val_loss), Bits(none->val_loss));
  }
}

std::string RowName(const ::testing::TestParamInfo<LayoutRow>& info) {
  return LayoutName(info.param.ToLayout());
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, RecomputeBitwise,
    ::testing::Values(LayoutRow{.micro_batches = 4},
                      LayoutRow{.tp = 2, .micro_batch_size = 2, .micro_batches = 2,
                                .sequence_parallel = true},
                      LayoutRow{.pp = 2, .micro_batches = 4, .schedule = topology::ZERO_BUBBLE_H1},
                      LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4,
                                .schedule = topology::ZERO_BUBBLE_H1, .sequence_parallel = true,
                                .grad_bucket_mb = 0.01, .zero_stage = 3}),
    RowName);

}  // namespace
}  // namespace trident::testing
