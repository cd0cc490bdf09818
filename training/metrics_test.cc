#include "training/metrics.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace trident::training {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  EXPECT_NE(dir, nullptr);
  return std::string(dir) + "/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  EXPECT_EQ(lines.back(), "") << "the file must end with a line break";
  lines.pop_back();
  return lines;
}

using Json = ::nlohmann::ordered_json;

// Parses one JSON text; a discarded value (is_discarded()) when it is invalid.
Json Parse(const std::string& text) { return Json::parse(text, nullptr, /*allow_exceptions=*/false); }

double ParseNumber(const Json& value) {
  EXPECT_TRUE(value.is_number()) << value.dump();
  return value.get<double>();
}

TEST(JsonNumberTest, ShortestFormThatRoundTrips) {
  EXPECT_EQ(JsonNumber(0.1), "0.1");
  EXPECT_EQ(JsonNumber(3.0), "3");
  EXPECT_EQ(JsonNumber(-2.5), "-2.5");
  EXPECT_EQ(JsonNumber(1e-8), "1e-08");
  EXPECT_EQ(JsonNumber(6e-4), "6e-04");  // to_chars picks the shorter form
  EXPECT_EQ(JsonNumber(0.0125), "0.0125");
  EXPECT_EQ(JsonNumber(-0.0), "-0");
  // A float loss widened to double keeps every bit.
  EXPECT_EQ(std::strtod(JsonNumber(static_cast<double>(3.4521f)).c_str(), nullptr),
            static_cast<double>(3.4521f));
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 2000; ++i) {
    const double x = std::ldexp(unit(rng) - 0.5, static_cast<int>(rng() % 200) - 100);
    const std::string text = JsonNumber(x);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), x) << text;
    // And it is a valid JSON number.
    const Json parsed = Parse(text);
    ASSERT_FALSE(parsed.is_discarded()) << text;
    EXPECT_EQ(parsed.get<double>(), x) << text;
  }
}

TEST(JsonNumberTest, NonFiniteIsNull) {
  EXPECT_EQ(JsonNumber(kNaN), "null");
  EXPECT_EQ(JsonNumber(kInf), "null");
  EXPECT_EQ(JsonNumber(-kInf), "null");
}

TEST(JsonLineTest, KeysInOrderAndEscaped) {
  JsonLine line;
  line.AddInt("step", -3).AddString("name", "a \"b\"\n").AddBool("ok", true).AddNull("x");
  EXPECT_EQ(line.ToString(), R"({"step":-3,"name":"a \"b\"\n","ok":true,"x":null})");
  EXPECT_EQ(JsonLine().ToString(), "{}");
}

TEST(TrainMetricsLineTest, ExactTextAndParsesBack) {
  StepReport m;
  m.step = 12;
  m.loss = 3.4521;
  m.lr = 6e-4;
  m.grad_norm = 0.875;
  m.tokens_per_s = 12345.5;
  m.step_time_ms = 85.25;
  m.mfu = 0.125;
  m.tokens = 12288;
  m.model_tflops = 0.0625;
  const std::string text = TrainMetricsLine(m).ToString();
  EXPECT_EQ(text,
            R"({"step":12,"loss":3.4521,"lr":6e-04,"grad_norm":0.875,"tokens_per_s":12345.5,)"
            R"("step_time_ms":85.25,"mfu":0.125,"tokens":12288,"model_tflops":0.0625})");
  const Json json = Parse(text);
  ASSERT_FALSE(json.is_discarded()) << text;
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  EXPECT_THAT(keys, ::testing::ElementsAre("step", "loss", "lr", "grad_norm", "tokens_per_s",
                                           "step_time_ms", "mfu", "tokens", "model_tflops"));
  EXPECT_EQ(ParseNumber(json["loss"]), 3.4521);
  EXPECT_EQ(json["tokens"].get<int64_t>(), 12288);
}

TEST(TrainMetricsLineTest, GradientSyncFiguresComeLastAndOnlyWhenKnown) {
  StepReport m;
  m.step = 3;
  EXPECT_THAT(TrainMetricsLine(m).ToString(), ::testing::Not(HasSubstr("dp_bytes_sent")));
  m.dp_bytes_sent = 55680;
  m.topk_k = 2319;
  const std::string text = TrainMetricsLine(m).ToString();
  EXPECT_THAT(text, HasSubstr(R"("model_tflops":0,"dp_bytes_sent":55680,"topk_k":2319})"));
}

TEST(TrainMetricsLineTest, CpuTimeComesLastWhenKnown) {
  StepReport m;
  m.step = 3;
  m.cpu_time_ms = 160.5;
  const std::string text = TrainMetricsLine(m).ToString();
  EXPECT_THAT(text, ::testing::EndsWith(R"("model_tflops":0,"cpu_time_ms":160.5})"));
}

TEST(TrainMetricsLineTest, NonFiniteAndUnknownValuesAreNull) {
  StepReport m;
  m.step = 7;
  m.loss = kNaN;
  m.grad_norm = kInf;
  const std::string text = TrainMetricsLine(m).ToString();
  const Json json = Parse(text);
  ASSERT_FALSE(json.is_discarded()) << text;
  EXPECT_TRUE(json["loss"].is_null());
  EXPECT_TRUE(json["grad_norm"].is_null());
  EXPECT_TRUE(json["mfu"].is_null());
  EXPECT_THAT(text, HasSubstr(R"("lr":0,)"));
}

TEST(ValidationMetricsLineTest, ExactText) {
  EXPECT_EQ(ValidationMetricsLine({50, 2.25}).ToString(), R"({"step":50,"val_loss":2.25})");
}

TEST(MetricsWriterTest, CreatesDirectoriesAndEveryLineIsOnDiskAtOnce) {
  const std::string path = TempPath("runs/a/b/metrics.jsonl");
  absl::StatusOr<std::unique_ptr<MetricsWriter>> writer = MetricsWriter::Open(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ((*writer)->path(), path);
  std::vector<double> losses = {5.5451774444795623, 4.1, 3.0000001};
  for (int s = 0; s < 3; ++s) {
    StepReport m;
    m.step = s + 1;
    m.loss = losses[s];
    ASSERT_TRUE((*writer)->WriteTrain(m).ok());
    // Visible before the writer is closed.
    EXPECT_EQ(Lines(ReadFile(path)).size(), static_cast<size_t>(s + 1));
  }
  ASSERT_TRUE((*writer)->WriteValidation({3, 2.5}).ok());
  const std::vector<std::string> lines = Lines(ReadFile(path));
  ASSERT_EQ(lines.size(), 4u);
  for (int s = 0; s < 3; ++s) {
    const Json json = Parse(lines[s]);
    ASSERT_FALSE(json.is_discarded()) << lines[s];
    EXPECT_EQ(ParseNumber(json["loss"]), losses[s]);  // exact, not to 1e-6
  }
  const Json val = Parse(lines[3]);
  ASSERT_FALSE(val.is_discarded());
  EXPECT_EQ(ParseNumber(val["val_loss"]), 2.5);
}

TEST(MetricsWriterTest, TruncateStartsFreshAppendContinues) {
  const std::string path = TempPath("modes.jsonl");
  {
    auto writer = MetricsWriter::Open(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteValidation({1, 1.0}).ok());
    ASSERT_TRUE((*writer)->WriteValidation({2, 1.0}).ok());
  }
  {
    auto writer = MetricsWriter::Open(path, MetricsWriter::Mode::kAppend);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteValidation({3, 1.0}).ok());
  }
  EXPECT_EQ(Lines(ReadFile(path)).size(), 3u);
  {
    auto writer = MetricsWriter::Open(path, MetricsWriter::Mode::kTruncate);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteValidation({1, 1.0}).ok());
  }
  EXPECT_EQ(Lines(ReadFile(path)), std::vector<std::string>({R"({"step":1,"val_loss":1})"}));
}

TEST(MetricsWriterTest, ErrorsNameThePath) {
  const std::string file = TempPath("plain_file");
  std::ofstream(file) << "x";
  const std::string under_file = file + "/metrics.jsonl";
  absl::StatusOr<std::unique_ptr<MetricsWriter>> writer = MetricsWriter::Open(under_file);
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(writer.status().message(), HasSubstr(under_file));

  const std::string directory = TempPath("a_directory");
  ASSERT_TRUE(MetricsWriter::Open(directory + "/x.jsonl").ok());  // creates it
  writer = MetricsWriter::Open(directory);
  ASSERT_FALSE(writer.ok());
  EXPECT_THAT(writer.status().message(), HasSubstr("cannot open metrics file '" + directory));

  EXPECT_FALSE(MetricsWriter::Open("").ok());
}

TEST(ProgressLineTest, FullLine) {
  StepReport info;
  info.step = 12;
  info.total_steps = 200;
  info.loss = 3.45213;
  info.lr = 6e-4;
  info.grad_norm = 0.8734;
  info.tokens_per_s = 12345;
  info.mfu = 0.1234;
  info.model_tflops = 0.0617;
  info.step_time_ms = 85.04;
  info.eta_seconds = 16.2;
  EXPECT_EQ(FormatProgressLine(info),
            "step  12/200 | loss 3.4521 | lr 6.00e-04 | gnorm 0.873 | 1.23e+04 tok/s | "
            "0.0617 TFLOP/s | mfu 12.3% | 85.0 ms/step | eta 0:00:16");
}

// dp_sync=ps: the workers do not know the gradient norm (the servers clip).
TEST(ProgressLineTest, AnUnknownGradientNormReadsNotAvailable) {
  StepReport info;
  info.step = 2;
  info.total_steps = 4;
  info.loss = 5.25;
  info.lr = 1e-4;
  info.grad_norm = std::nullopt;
  info.tokens_per_s = 1000;
  info.step_time_ms = 10;
  EXPECT_THAT(FormatProgressLine(info), HasSubstr("| lr 1.00e-04 | gnorm n/a | 1.00e+03 tok/s"));
  const Json json = Parse(TrainMetricsLine(info).ToString());
  ASSERT_FALSE(json.is_discarded());
  EXPECT_TRUE(json["grad_norm"].is_null());
}

TEST(ProgressLineTest, PrecisionAndLossScaleAreShownAndWritten) {
  StepReport info;
  info.step = 3;
  info.total_steps = 10;
  info.loss = 2.5;
  info.lr = 1e-3;
  info.grad_norm = kInf;
  info.tokens_per_s = 500;
  info.step_time_ms = 10;
  info.precision = "bf16";
  EXPECT_THAT(FormatProgressLine(info), ::testing::EndsWith("| eta ? | bf16"));
  EXPECT_THAT(TrainMetricsLine(info).ToString(), Not(HasSubstr("loss_scale")));
  info.precision = "fp16";
  info.loss_scale = 32768;
  info.skipped = true;
  info.skipped_steps = 2;
  EXPECT_THAT(FormatProgressLine(info),
              ::testing::EndsWith(
                  "| fp16 scale 32768 (step skipped: inf/NaN gradient) | skipped 2"));
  EXPECT_THAT(TrainMetricsLine(info).ToString(),
              ::testing::EndsWith(R"("loss_scale":32768,"skipped":true})"));
  info.skipped = false;
  EXPECT_THAT(TrainMetricsLine(info).ToString(),
              ::testing::EndsWith(R"("loss_scale":32768,"skipped":false})"));
}

TEST(ProgressLineTest, OptionalPartsLeftOutAndNonFiniteShown) {
  StepReport info;
  info.step = 5;
  info.total_steps = 1000;
  info.loss = kNaN;
  info.lr = 1e-3;
  info.grad_norm = kInf;
  info.tokens_per_s = 500;
  info.step_time_ms = 412.4;
  EXPECT_EQ(FormatProgressLine(info),
            "step    5/1000 | loss nan | lr 1.00e-03 | gnorm inf | 5.00e+02 tok/s | 0 TFLOP/s | "
            "412 ms/step | eta ?");
  info.step_time_ms = 3.14159;
  EXPECT_THAT(FormatProgressLine(info), HasSubstr("| 3.14 ms/step |"));
}

TEST(ProgressLineTest, ValidationLine) {
  EXPECT_EQ(FormatValidationLine(50, 200, 2.98767), "step  50/200 | val_loss 2.9877");
}

TEST(FormatDurationTest, HoursMinutesSeconds) {
  EXPECT_EQ(FormatDuration(0), "0:00:00");
  EXPECT_EQ(FormatDuration(16.2), "0:00:16");
  EXPECT_EQ(FormatDuration(59.6), "0:01:00");
  EXPECT_EQ(FormatDuration(3661), "1:01:01");
  EXPECT_EQ(FormatDuration(100 * 3600 + 5), "100:00:05");
  EXPECT_EQ(FormatDuration(-1), "?");
  EXPECT_EQ(FormatDuration(kNaN), "?");
  EXPECT_EQ(FormatDuration(kInf), "?");
}

TEST(ThroughputTrackerTest, SmoothsAndPredicts) {
  ThroughputTracker tracker(/*smoothing=*/0.5);
  EXPECT_EQ(tracker.steps(), 0);
  EXPECT_EQ(tracker.smoothed_tokens_per_second(), 0.0);
  EXPECT_FALSE(tracker.EtaSeconds(10).has_value());

  tracker.AddStep(1.0, 1000);
  EXPECT_DOUBLE_EQ(tracker.smoothed_step_seconds(), 1.0);  // first sample initialises
  EXPECT_DOUBLE_EQ(tracker.smoothed_tokens_per_second(), 1000.0);
  tracker.AddStep(2.0, 1000);
  EXPECT_DOUBLE_EQ(tracker.smoothed_step_seconds(), 1.5);
  EXPECT_DOUBLE_EQ(tracker.smoothed_tokens_per_second(), 1000.0 / 1.5);
  EXPECT_DOUBLE_EQ(tracker.last_step_seconds(), 2.0);
  EXPECT_DOUBLE_EQ(tracker.last_tokens_per_second(), 500.0);
  EXPECT_DOUBLE_EQ(*tracker.EtaSeconds(10), 15.0);
  EXPECT_DOUBLE_EQ(*tracker.EtaSeconds(0), 0.0);
  EXPECT_EQ(tracker.steps(), 2);
  EXPECT_EQ(tracker.total_tokens(), 2000);
  EXPECT_DOUBLE_EQ(tracker.total_seconds(), 3.0);
  // A lasting change is followed: after many 4-second steps the EMA is ~4.
  for (int i = 0; i < 40; ++i) tracker.AddStep(4.0, 1000);
  EXPECT_NEAR(tracker.smoothed_step_seconds(), 4.0, 1e-9);
}

TEST(StopwatchTest, MeasuresElapsedTime) {
  Stopwatch watch;
  const double first = watch.ElapsedSeconds();
  EXPECT_GE(first, 0.0);
  volatile double sink = 0;
  for (int i = 0; i < 100000; ++i) sink = sink + std::sqrt(static_cast<double>(i));
  EXPECT_GE(watch.ElapsedSeconds(), first);
  watch.Restart();
  EXPECT_LT(watch.ElapsedSeconds(), 1.0);
}

}  // namespace
}  // namespace trident::training
