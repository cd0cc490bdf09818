#include "training/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "gtest/gtest.h"

namespace trident::training {
namespace {

// Every expected value below is worked out by hand from the formulas in
// lr_schedule.h; tolerances are a few ulps of double.
constexpr double kTol = 1e-15;

OptimizerConfig Config(OptimizerConfig::Decay decay, int warmup, int decay_steps = 0) {
  OptimizerConfig c;
  c.set_learning_rate(1e-3);
  c.set_min_learning_rate(1e-4);
  c.set_warmup_steps(warmup);
  c.set_decay(decay);
  c.set_decay_steps(decay_steps);
  return c;
}

TEST(LearningRateTest, WarmupIsLinearAndEndsAtThePeak) {
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 20);
  EXPECT_NEAR(LearningRate(0, c, 200), 1e-3 / 20, kTol);  // never 0
  EXPECT_NEAR(LearningRate(1, c, 200), 2e-3 / 20, kTol);
  EXPECT_NEAR(LearningRate(9, c, 200), 0.5e-3, kTol);
  EXPECT_NEAR(LearningRate(19, c, 200), 1e-3, kTol);
  // The decay starts from the peak at step == warmup.
  EXPECT_NEAR(LearningRate(20, c, 200), 1e-3, kTol);
}

TEST(LearningRateTest, CosineDecayToTheFloor) {
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 20);
  // Span 180 steps: step 110 is half-way (cos(pi/2) = 0): the mean of peak and floor.
  EXPECT_NEAR(LearningRate(110, c, 200), 0.55e-3, kTol);
  // A quarter of the way: floor + 0.9e-3 * (1 + cos(pi/4)) / 2.
  EXPECT_NEAR(LearningRate(65, c, 200), 1e-4 + 0.9e-3 * (1 + std::sqrt(0.5)) / 2, kTol);
  // The last step of the run is just above the floor; the total step count is the floor.
  EXPECT_NEAR(LearningRate(199, c, 200),
              1e-4 + 0.9e-3 * (1 + std::cos(std::numbers::pi * 179 / 180)) / 2, kTol);
  EXPECT_GT(LearningRate(199, c, 200), 1e-4);
  EXPECT_NEAR(LearningRate(200, c, 200), 1e-4, kTol);
  EXPECT_NEAR(LearningRate(5000, c, 200), 1e-4, kTol);
}

TEST(LearningRateTest, CosineIsMonotoneAfterWarmup) {
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 20);
  for (int s = 20; s < 250; ++s) {
    EXPECT_LE(LearningRate(s + 1, c, 200), LearningRate(s, c, 200)) << s;
  }
}

TEST(LearningRateTest, LinearDecay) {
  const OptimizerConfig c = Config(OptimizerConfig::LINEAR, 10, 110);
  EXPECT_NEAR(LearningRate(10, c, 1000), 1e-3, kTol);
  // 25 of 100 steps: 1e-4 + 0.9e-3 * 0.75.
  EXPECT_NEAR(LearningRate(35, c, 1000), 7.75e-4, kTol);
  EXPECT_NEAR(LearningRate(60, c, 1000), 5.5e-4, kTol);
  EXPECT_NEAR(LearningRate(109, c, 1000), 1e-4 + 0.9e-3 * 0.01, kTol);
  // decay_steps, not the total, ends the decay.
  EXPECT_NEAR(LearningRate(110, c, 1000), 1e-4, kTol);
  EXPECT_NEAR(LearningRate(999, c, 1000), 1e-4, kTol);
}

TEST(LearningRateTest, ConstantAfterWarmupIgnoresTheFloor) {
  const OptimizerConfig c = Config(OptimizerConfig::CONSTANT, 4);
  EXPECT_NEAR(LearningRate(0, c, 100), 2.5e-4, kTol);
  EXPECT_NEAR(LearningRate(3, c, 100), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(4, c, 100), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(99, c, 100), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(1000, c, 100), 1e-3, kTol);
}

TEST(LearningRateTest, NoWarmupStartsAtThePeak) {
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 0);
  EXPECT_NEAR(LearningRate(0, c, 10), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(5, c, 10), 0.55e-3, kTol);
}

TEST(LearningRateTest, DecayEndingAtWarmupDropsToTheFloor) {
  // decay_steps == warmup_steps: no decay phase at all.
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 5, 5);
  EXPECT_NEAR(LearningRate(4, c, 50), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(5, c, 50), 1e-4, kTol);
}

TEST(LearningRateTest, WarmupOverTheWholeRun) {
  const OptimizerConfig c = Config(OptimizerConfig::COSINE, 8);
  EXPECT_NEAR(LearningRate(7, c, 8), 1e-3, kTol);
  EXPECT_NEAR(LearningRate(8, c, 8), 1e-4, kTol);
}

}  // namespace
}  // namespace trident::training
