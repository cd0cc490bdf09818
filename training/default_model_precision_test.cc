// The default job's model in bf16 and fp16 tracks its fp32 loss curve: 200
// steps of configs/default.textproto (0.84 M parameters, 4 layers, hidden 128,
// 8 x 128 tokens per step), serial and its own tp2 x pp2 x dp2 layout, each
// step's loss within 2 % (relative) of fp32's. The corpus is a generated
// English-like text (the Brown corpus is not available inside the test's
// sandbox); the README's "Mixed precision" table is the same comparison on
// Brown.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"
#include "training/default_config.h"
#include "training/precision.h"
#include "training/test_corpus.h"
#include "training/trainer_testing.h"
#include "training/trainer.h"

namespace trident::training {
namespace {

constexpr int kSteps = 200;

std::vector<double> Losses(const std::string& data_dir, Precision precision, bool serial) {
  TrainOptions options = testing::DefaultJob(data_dir, kSteps, serial);
  options.config.set_precision(precision);
  std::ostringstream sink;
  options.log = &sink;
  absl::StatusOr<TrainResult> result = Train(options);
  TRIDENT_CHECK_OK(result.status());
  return result->losses;
}

TEST(DefaultModelPrecisionTest, Bf16AndFp16TrackFp32SerialAndThreeD) {
  const std::string data_dir =
      testing::WriteEnglishLikeTokenFiles(io::testing::FreshTestDir("precision_corpus"));
  for (bool serial : {true, false}) {
    const std::vector<double> fp32 = Losses(data_dir, FP32, serial);
    ASSERT_EQ(fp32.size(), kSteps);
    ASSERT_LT(fp32.back(), 0.7 * fp32.front()) << "the default model must learn the corpus";
    for (Precision precision : {BF16, FP16}) {
      const std::vector<double> run = Losses(data_dir, precision, serial);
      ASSERT_EQ(run.size(), kSteps);
      double worst = 0;
      for (int s = 0; s < kSteps; ++s) {
        const double difference = std::abs(run[s] - fp32[s]) / fp32[s];
        if (!(difference <= worst)) worst = difference;  // NaN is the worst
        EXPECT_LT(difference, kMixedPrecisionLossTolerance)
            << PrecisionName(precision) << (serial ? " serial" : " tp2 x pp2 x dp2") << " step "
            << s + 1 << ": " << run[s] << ", fp32 " << fp32[s];
      }
      std::printf("default model, %s, %s: worst relative loss difference to fp32 over %d "
                  "steps %.3g (final %.4f, fp32 %.4f)\n",
                  serial ? "serial" : "tp2 x pp2 x dp2",
                  std::string(PrecisionName(precision)).c_str(), kSteps, worst, run.back(),
                  fp32.back());
    }
  }
}

}  // namespace
}  // namespace trident::training
