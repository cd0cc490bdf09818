#include "training/loss_scaler.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;

LossScaleConfig Dynamic(double initial, int window, int hysteresis, double min_scale = 1) {
  LossScaleConfig c;
  c.set_dynamic(true);
  c.set_initial_scale(initial);
  c.set_window(window);
  c.set_hysteresis(hysteresis);
  c.set_min_scale(min_scale);
  return c;
}

TEST(LossScalerTest, DefaultsAreDeepSpeedsAndMegatrons) {
  const LossScaleConfig defaults;
  EXPECT_TRUE(defaults.dynamic());
  EXPECT_EQ(defaults.initial_scale(), 65536);  // 2^16
  EXPECT_EQ(defaults.window(), 1000);
  EXPECT_EQ(defaults.hysteresis(), 2);
  EXPECT_EQ(defaults.min_scale(), 1);
}

TEST(LossScalerTest, HysteresisDelaysTheHalvingAndEveryOverflowIsSkipped) {
  absl::StatusOr<LossScaler> s = LossScaler::Create(Dynamic(1024, 1000, 2));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->Update(true));  // skipped, hysteresis 2 -> 1, scale kept
  EXPECT_EQ(s->scale(), 1024);
  EXPECT_TRUE(s->Update(true));  // skipped, hysteresis exhausted: halve
  EXPECT_EQ(s->scale(), 512);
  EXPECT_TRUE(s->Update(true));  // hysteresis restored to 2 after the halving
  EXPECT_EQ(s->scale(), 512);
  EXPECT_TRUE(s->Update(true));
  EXPECT_EQ(s->scale(), 256);
  EXPECT_FALSE(s->Update(false));
  EXPECT_EQ(s->skipped_steps(), 4);
}

TEST(LossScalerTest, DoublesAfterAWindowOfCleanStepsAndAnOverflowRestartsTheWindow) {
  absl::StatusOr<LossScaler> s = LossScaler::Create(Dynamic(8, 3, 1));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->Update(false));
  EXPECT_FALSE(s->Update(false));
  EXPECT_EQ(s->scale(), 8);
  EXPECT_FALSE(s->Update(false));  // third clean step: double
  EXPECT_EQ(s->scale(), 16);
  EXPECT_FALSE(s->Update(false));
  EXPECT_FALSE(s->Update(false));
  EXPECT_TRUE(s->Update(true));  // hysteresis 1: halve at once, window restarts
  EXPECT_EQ(s->scale(), 8);
  EXPECT_FALSE(s->Update(false));
  EXPECT_FALSE(s->Update(false));
  EXPECT_EQ(s->scale(), 8);  // only two clean steps since the overflow
  EXPECT_FALSE(s->Update(false));
  EXPECT_EQ(s->scale(), 16);
  EXPECT_EQ(s->skipped_steps(), 1);
}

TEST(LossScalerTest, NeverHalvesBelowTheMinimum) {
  absl::StatusOr<LossScaler> s = LossScaler::Create(Dynamic(4, 1000, 1, /*min_scale=*/2));
  ASSERT_TRUE(s.ok());
  s->Update(true);
  s->Update(true);
  s->Update(true);
  EXPECT_EQ(s->scale(), 2);
  EXPECT_EQ(s->skipped_steps(), 3);
}

TEST(LossScalerTest, AStaticScaleNeverChangesButStillSkipsOverflows) {
  LossScaleConfig c = Dynamic(128, 1, 1);
  c.set_dynamic(false);
  absl::StatusOr<LossScaler> s = LossScaler::Create(c);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->Update(false));
  EXPECT_FALSE(s->Update(false));
  EXPECT_TRUE(s->Update(true));
  EXPECT_EQ(s->scale(), 128);
  EXPECT_EQ(s->skipped_steps(), 1);
}

TEST(LossScalerTest, StateRoundTripsAndBadStateIsRefused) {
  absl::StatusOr<LossScaler> a = LossScaler::Create(Dynamic(64, 3, 2));
  ASSERT_TRUE(a.ok());
  a->Update(false);
  a->Update(true);
  absl::StatusOr<LossScaler> b = LossScaler::Create(Dynamic(64, 3, 2));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Restore(a->state()).ok());
  // Both continue identically.
  for (bool overflow : {false, false, true, true, false, false, false}) {
    EXPECT_EQ(a->Update(overflow), b->Update(overflow));
    EXPECT_EQ(a->scale(), b->scale());
  }
  EXPECT_EQ(a->skipped_steps(), b->skipped_steps());
  LossScaler::State bad = a->state();
  bad.scale = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THAT(b->Restore(bad).message(), HasSubstr("scale=nan must be a finite number > 0"));
  bad = a->state();
  bad.hysteresis_left = -1;
  EXPECT_THAT(b->Restore(bad).message(), HasSubstr("hysteresis_left=-1"));
}

TEST(LossScalerTest, BadConfigsAreRefusedNamingTheField) {
  EXPECT_THAT(LossScaler::Create(Dynamic(-1, 10, 2)).status().message(),
              HasSubstr("loss_scale.initial_scale=-1"));
  EXPECT_THAT(LossScaler::Create(Dynamic(8, 0, 2)).status().message(),
              HasSubstr("loss_scale.window=0 must be >= 1"));
  EXPECT_THAT(LossScaler::Create(Dynamic(8, 10, 0)).status().message(),
              HasSubstr("loss_scale.hysteresis=0 must be >= 1"));
}

}  // namespace
}  // namespace trident::training
