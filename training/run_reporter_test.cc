#include "training/run_reporter.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::vector<std::string> NonEmptyLines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

RunReporterOptions Options(std::ostream* log, const std::string& metrics_path) {
  RunReporterOptions options;
  options.log = log;
  options.metrics_path = metrics_path;
  options.total_steps = 5;
  options.log_interval = 2;
  options.tokens_per_step = 1000;
  options.flops_per_token = 1e6;
  return options;
}

TEST(RunReporterTest, OneRecordPerStepRenderedAsLineAndJson) {
  const std::string metrics = io::testing::FreshTestDir("reporter") + "/m.jsonl";
  std::ostringstream log;
  RunReporterOptions options = Options(&log, metrics);
  options.peak_flops = 1e10;
  absl::StatusOr<std::unique_ptr<RunReporter>> reporter = RunReporter::Create(options);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  (*reporter)->Note("header");
  for (int step = 0; step < 5; ++step) {
    // 0.5 s per step: 2000 tokens/s, 2e9 FLOP/s of 1e10 = 20% MFU.
    ASSERT_TRUE((*reporter)->Step(step, 0.5, 3.0 - step * 0.1, 6e-4, 0.5).ok());
  }
  ASSERT_TRUE((*reporter)->Validation(5, 2.5).ok());
  (*reporter)->Finish("out/ckpt/step_00000005", "model.safetensors");

  const std::vector<std::string> lines = NonEmptyLines(log.str());
  // Header, steps 2 and 4 (log_interval) and 5 (the last), validation, summary.
  ASSERT_EQ(lines.size(), 6u) << log.str();
  EXPECT_EQ(lines[0], "header");
  EXPECT_THAT(lines[1], StartsWith("step 2/5 | loss 2.9000 |"));
  EXPECT_THAT(lines[1],
              HasSubstr("| 2.00e+03 tok/s | 0.002 TFLOP/s | mfu 20.0% | 500 ms/step | eta 0:00:02"));
  EXPECT_THAT(lines[2], StartsWith("step 4/5 |"));
  EXPECT_THAT(lines[3], StartsWith("step 5/5 |"));
  EXPECT_EQ(lines[4], "step 5/5 | val_loss 2.5000");
  EXPECT_THAT(lines[5], StartsWith("done: 5 steps in 0:00:03, 2e+03 tokens/s, mfu 20.0%; last "
                                   "train loss 2.6000, validation loss 2.5000 (step 5); metrics "));
  EXPECT_THAT(lines[5], HasSubstr("; checkpoint out/ckpt/step_00000005; export model.safetensors"));
  // Every step in the JSONL, with the same figures as the line.
  const std::vector<std::string> json = NonEmptyLines(io::testing::ReadWholeFile(metrics));
  ASSERT_EQ(json.size(), 6u);
  EXPECT_EQ(json[1], R"({"step":2,"loss":2.9,"lr":6e-04,"grad_norm":0.5,"tokens_per_s":2000,)"
                     R"("step_time_ms":500,"mfu":0.2,"tokens":2000,"model_tflops":0.002})");
  EXPECT_EQ(json[5], R"({"step":5,"val_loss":2.5})");

  const RunTotals& totals = (*reporter)->totals();
  EXPECT_EQ(totals.losses.size(), 5u);
  EXPECT_EQ(totals.tokens, 5000);
  EXPECT_DOUBLE_EQ(totals.seconds, 2.5);
}

TEST(RunReporterTest, NoPeakNoMfu) {
  std::ostringstream log;
  absl::StatusOr<std::unique_ptr<RunReporter>> reporter = RunReporter::Create(Options(&log, ""));
  ASSERT_TRUE(reporter.ok());
  ASSERT_TRUE((*reporter)->Step(1, 0.25, 3.0, 1e-3, 0.5).ok());
  (*reporter)->Finish();
  EXPECT_THAT(log.str(), Not(HasSubstr("mfu")));
}

TEST(RunReporterTest, SilentReporterKeepsTotalsOnly) {
  const std::string metrics = io::testing::FreshTestDir("silent_reporter") + "/m.jsonl";
  absl::StatusOr<std::unique_ptr<RunReporter>> reporter =
      RunReporter::Create(Options(nullptr, metrics));
  ASSERT_TRUE(reporter.ok());
  ASSERT_TRUE((*reporter)->Step(0, 0.5, 3.0, 1e-3, 0.5).ok());
  ASSERT_TRUE((*reporter)->Validation(1, 2.0).ok());
  (*reporter)->Finish();
  EXPECT_FALSE(std::ifstream(metrics).good());  // never opened
  EXPECT_EQ((*reporter)->totals().losses.size(), 1u);
  EXPECT_EQ((*reporter)->totals().val_losses.size(), 1u);
}

}  // namespace
}  // namespace trident::training
