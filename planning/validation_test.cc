// Plans the rows of Narayanan et al. 2021 (arXiv 2104.04473), Table 1 (GPT
// 1.7B to 1T on up to 3,072 A100s) with configs/hardware/a100_80gb.textproto
// -- one GEMM efficiency curve for every row, no per-row constant -- and
// compares the predicted teraFLOP/s per GPU with the published ones. FLOP/s
// are counted the paper's way (its equation 3, activation recomputation
// included):  96 B s l h^2 (1 + s / 6h + V / 16 l h)  per iteration.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "planning/planner.h"
#include "training/train_config.h"

namespace trident::planning {
namespace {

struct Row {
  const char* file;
  double published_tflops;  // achieved teraFLOP/s per GPU, Table 1
};

constexpr Row kRows[] = {
    {"gpt_1.7b", 137},   {"gpt_3.6b", 138},   {"gpt_7.5b", 142},   {"gpt_18.4b", 135},
    {"gpt_39.1b", 138},  {"gpt_76.1b", 140},  {"gpt_145.6b", 148}, {"gpt_310.1b", 155},
    {"gpt_529.6b", 163}, {"gpt_1008b", 163},
};

// The band the README states: every row within 25 % of the published figure (the worst was +19 % when written).
constexpr double kErrorBand = 0.25;

TEST(Validation, Narayanan2021Table1) {
  auto hw = LoadHardware("configs/hardware/a100_80gb.textproto");
  ASSERT_TRUE(hw.ok()) << hw.status();
  std::printf("%-12s %6s %6s %6s %8s %10s %10s %8s %8s\n", "model", "gpus", "tp", "pp",
              "batch", "predicted", "published", "error", "plan_s");
  double sum_abs = 0;
  for (const Row& row : kRows) {
    auto config =
        training::LoadTrainConfig(std::string("configs/plan_validation/") + row.file + ".textproto");
    ASSERT_TRUE(config.ok()) << config.status();
    const auto start = std::chrono::steady_clock::now();
    auto plan = PlanStep(*config, *hw, training::FP16);
    const double plan_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(plan.ok()) << row.file << ": " << plan.status();
    const auto& model = config->model();
    const auto& layout = config->layout();
    const double B = layout.global_batch_size(), s = config->data().seq_length();
    const double l = model.num_layers(), h = model.hidden_size(), V = model.vocab_size();
    const double flops = 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h));
    ASSERT_TRUE(std::isfinite(plan->step_time_s) && plan->step_time_s > 0) << row.file;
    const double predicted = flops / plan->step_time_s / plan->world_size / 1e12;
    const double error = predicted / row.published_tflops - 1;
    sum_abs += std::fabs(error);
    std::printf("%-12s %6d %6d %6d %8.0f %10.1f %10.0f %+7.1f%% %8.3f\n", row.file,
                plan->world_size, layout.tensor_parallel(), layout.pipeline_parallel(), B,
                predicted, row.published_tflops, 100 * error, plan_s);
    EXPECT_TRUE(std::isfinite(predicted));
    EXPECT_LT(std::fabs(error), kErrorBand) << row.file << ": predicted " << predicted
                                            << " TFLOP/s, published " << row.published_tflops;
    EXPECT_LT(plan->memory.total(), hw->memory_bytes()) << row.file << " fits in 80 GB";
  }
  std::printf("mean absolute error %.1f%%\n", 100 * sum_abs / std::size(kRows));
}

}  // namespace
}  // namespace trident::planning
