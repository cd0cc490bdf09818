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
#include "training/data/token_file.h"
#include "training/default_config.h"
#include "training/precision.h"
#include "training/trainer.h"

namespace trident::training {
namespace {

constexpr double kTolerance = 2e-2;
constexpr int kSteps = 200;

// Sentences drawn by a fixed linear congruential generator from a small
// vocabulary of words: byte tokens with English-like statistics, enough for
// 200 steps without memorising (about 60 k tokens).
std::string WriteCorpus(const std::string& dir) {
  const std::vector<std::string> words = {
      "the",   "of",    "and",  "to",     "a",      "in",    "that",  "is",    "was",
      "he",    "for",   "it",   "with",   "as",     "his",   "on",    "be",    "at",
      "by",    "had",   "not",  "are",    "but",    "from",  "or",    "have",  "an",
      "they",  "which", "one",  "you",    "were",   "her",   "all",   "she",   "there",
      "would", "their", "we",   "him",    "been",   "has",   "when",  "who",   "will",
      "more",  "no",    "if",   "out",    "so",     "said",  "what",  "up",    "its",
      "about", "into",  "than", "them",   "can",    "only",  "other", "new",   "some",
      "could", "time",  "these", "two",   "may",    "then",  "do",    "first", "any",
      "my",    "now",   "such", "like",   "our",    "over",  "man",   "me",    "even"};
  std::vector<int32_t> tokens;
  uint64_t state = 20261206;
  const auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  while (tokens.size() < 64000) {
    const int length = 5 + static_cast<int>(next(10));
    for (int w = 0; w < length; ++w) {
      std::string word = words[next(words.size()) % (1 + next(words.size()))];
      if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      for (unsigned char c : word) tokens.push_back(c);
      tokens.push_back(w + 1 == length ? '.' : ' ');
    }
    tokens.push_back(' ');
  }
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/train.bin", 256, tokens));
  tokens.resize(8192);
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/val.bin", 256, tokens));
  return dir;
}

std::vector<double> Losses(const std::string& data_dir, Precision precision, bool serial) {
  TrainOptions options;
  absl::StatusOr<TrainConfig> config = DefaultTrainConfig();
  TRIDENT_CHECK_OK(config.status());
  options.config = *config;
  options.config.set_precision(precision);
  options.config.set_steps(kSteps);
  options.config.set_eval_interval(0);
  options.config.clear_data();
  options.config.mutable_data()->set_train_path(data_dir + "/train.bin");
  options.config.mutable_data()->set_val_path(data_dir + "/val.bin");
  if (serial) {
    auto* layout = options.config.mutable_layout();
    layout->set_tensor_parallel(1);
    layout->set_pipeline_parallel(1);
    layout->set_data_parallel(1);
    layout->set_micro_batch_size(8);
    layout->set_num_micro_batches(1);
    layout->clear_global_batch_size();
  }
  std::ostringstream sink;
  options.log = &sink;
  absl::StatusOr<TrainResult> result = Train(options);
  TRIDENT_CHECK_OK(result.status());
  return result->losses;
}

TEST(DefaultModelPrecisionTest, Bf16AndFp16TrackFp32SerialAndThreeD) {
  const std::string data_dir = WriteCorpus(io::testing::FreshTestDir("precision_corpus"));
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
        EXPECT_LT(difference, kTolerance)
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
