// ZeRO-Offload gives bitwise the results of the same layout without it: the
// trainer's own step (StepRunner, via the equivalence harness) with the
// optimizer state and the AdamW update on the host against the run that keeps
// them with the model. Losses of every step, gradients after step 1,
// parameters after the last step and the validation loss must be equal bit
// for bit (the update is the same kernel on the same fp32 numbers; only where
// the buffers live and the staged copies differ).

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "topology/layout.pb.h"
#include "training/step_runner.h"

namespace trident::testing {
namespace {

class CpuOffload : public ::testing::TestWithParam<LayoutRow> {};

TEST_P(CpuOffload, IsBitwiseTheRunWithoutOffload) {
  LayoutRow row = GetParam();
  row.cpu_offload = false;
  const training::TrainConfig plain_config = EquivalenceConfig(row.ToLayout(), /*steps=*/6);
  row.cpu_offload = true;
  const training::TrainConfig offload_config = EquivalenceConfig(row.ToLayout(), /*steps=*/6);
  absl::StatusOr<TrainedRun> plain = TrainLayout(plain_config);
  absl::StatusOr<TrainedRun> offloaded = TrainLayout(offload_config);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(offloaded.ok()) << offloaded.status();
  ASSERT_EQ(offloaded->losses.size(), plain->losses.size());
  for (size_t s = 0; s < plain->losses.size(); ++s) {
    EXPECT_EQ(offloaded->losses[s], plain->losses[s]) << "step " << s + 1;
  }
  const auto same_bits = [](const TensorsByName& got, const TensorsByName& want, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (const auto& [name, values] : want) {
      const auto it = got.find(name);
      ASSERT_TRUE(it != got.end()) << what << " " << name;
      ASSERT_EQ(it->second.size(), values.size()) << what << " " << name;
      EXPECT_EQ(std::memcmp(it->second.data(), values.data(), values.size() * sizeof(float)), 0)
          << what << " " << name << " differs";
    }
  };
  same_bits(offloaded->grads_after_step1, plain->grads_after_step1, "gradients after step 1");
  same_bits(offloaded->params_after_last, plain->params_after_last, "parameters after step 6");
  EXPECT_EQ(offloaded->val_loss, plain->val_loss);
}

// The layout field reaches the optimizer: with cpu_offload each rank's
// optimizer keeps its ZeRO windows' state (masters, moments, gradient
// staging: 4 floats per owned element) in its host allocator; without, none.
TEST(CpuOffloadRunner, OffloadsEachRanksWindowsToTheHost) {
  for (bool offload : {false, true}) {
    const training::TrainConfig config = EquivalenceConfig(LayoutRow{.dp = 2,
                                                                     .micro_batches = 2,
                                                                     .grad_bucket_mb = 0.01,
                                                                     .zero_stage = 3,
                                                                     .cpu_offload = offload}
                                                               .ToLayout(),
                                                           /*steps=*/1);
    const absl::Status status = RunRanks(config, [&](RankRun& r) -> absl::Status {
      int64_t owned = 0;
      for (const auto& w : r.runner.gradient_reducer().owned_windows()) owned += w.length;
      const training::AdamW& opt = r.runner.optimizer();
      const int64_t want = offload ? 4 * owned * 4 : 0;
      if (opt.offloaded() != offload || opt.host_bytes() != want) {
        return absl::InternalError(absl::StrCat("offloaded ", opt.offloaded(), ", host bytes ",
                                                opt.host_bytes(), ", want ", want));
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << "cpu_offload=" << offload << ": " << status;
  }
}

std::string RowName(const ::testing::TestParamInfo<LayoutRow>& info) {
  return LayoutName(info.param.ToLayout());
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, CpuOffload,
    ::testing::Values(
        // data_parallel=1: the whole state offloaded (the paper's one-GPU case).
        LayoutRow{.micro_batch_size = 2, .micro_batches = 2, .zero_stage = 1},
        LayoutRow{.dp = 2, .micro_batch_size = 4, .grad_bucket_mb = 0.01, .zero_stage = 1},
        LayoutRow{.dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01, .zero_stage = 2},
        LayoutRow{.dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01, .zero_stage = 3},
        LayoutRow{.tp = 2,
                  .pp = 2,
                  .dp = 2,
                  .micro_batches = 4,
                  .schedule = topology::ZERO_BUBBLE_H1,
                  .grad_bucket_mb = 0.01,
                  .zero_stage = 3}),
    RowName);

}  // namespace
}  // namespace trident::testing
