#include "training/train_config.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/default_config.h"
#include "training/precision.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;

// Bazel runs tests in the runfiles tree, where data files keep their
// workspace-relative paths.
std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EXPECT_TRUE(file.good()) << path;
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

TEST(DefaultConfigTest, EmbeddedTextIsTheFileByteForByte) {
  const std::string file = ReadFile("configs/default.textproto");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(DefaultTrainConfigText(), file);
}

TEST(DefaultConfigTest, ParsesAndValidates) {
  absl::StatusOr<TrainConfig> config = DefaultTrainConfig();
  ASSERT_TRUE(config.ok()) << config.status();
  // The micro-batch count is derived from the global batch when parsed.
  EXPECT_EQ(config->layout().global_batch_size(), 8);
  EXPECT_EQ(config->layout().num_micro_batches(), 4);
  EXPECT_TRUE(ValidateTrainConfig(*config).ok()) << ValidateTrainConfig(*config);
  // The job the brief describes: a small byte-level GPT on the Brown corpus.
  EXPECT_EQ(config->model().vocab_size(), 256);
  EXPECT_EQ(config->model().context_length(), 128);
  EXPECT_EQ(config->model().num_layers(), 4);
  EXPECT_EQ(config->model().num_heads(), 4);
  EXPECT_EQ(config->model().hidden_size(), 128);
  EXPECT_EQ(config->data().seq_length(), 128);
  EXPECT_EQ(config->data().tokenizer(), "byte");
  EXPECT_EQ(config->data().train_path(), "data/brown/train.bin");
  // A 3D layout (tp x pp x dp = 2 x 2 x 2) with the serial global batch of 8.
  EXPECT_EQ(config->layout().tensor_parallel(), 2);
  EXPECT_EQ(config->layout().pipeline_parallel(), 2);
  EXPECT_EQ(config->layout().data_parallel(), 2);
  EXPECT_EQ(config->layout().micro_batch_size() * config->layout().num_micro_batches() *
                config->layout().data_parallel(),
            8);
  EXPECT_EQ(config->steps(), 200);
  EXPECT_EQ(config->optimizer().learning_rate(), 1e-3);
  EXPECT_EQ(config->optimizer().min_learning_rate(), 1e-4);
  EXPECT_EQ(config->optimizer().warmup_steps(), 20);
  EXPECT_EQ(config->optimizer().decay(), OptimizerConfig::COSINE);
  EXPECT_EQ(config->eval_interval(), 50);
  EXPECT_EQ(config->eval_batches(), 8);
}

TEST(DefaultConfigTest, EveryExampleConfigLoadsAndValidates) {
  for (const char* path : {"configs/default.textproto", "configs/tiny.textproto"}) {
    absl::StatusOr<TrainConfig> config = LoadTrainConfig(path);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(ValidateTrainConfig(*config).ok()) << path << ": " << ValidateTrainConfig(*config);
  }
  absl::StatusOr<TrainConfig> tiny = LoadTrainConfig("configs/tiny.textproto");
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->model().num_layers(), 2);
  EXPECT_EQ(tiny->model().hidden_size(), 32);
  EXPECT_EQ(tiny->model().context_length(), 32);
}

TEST(ParseTrainConfigTest, EmptyTextGivesTheProtoDefaultsWhichAreValid) {
  absl::StatusOr<TrainConfig> config = ParseTrainConfig("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->optimizer().beta2(), 0.95);
  EXPECT_EQ(config->optimizer().weight_decay(), 0.1);
  EXPECT_EQ(config->optimizer().grad_clip(), 1.0);
  EXPECT_EQ(config->data().val_path(), "data/brown/val.bin");
  EXPECT_EQ(config->data().raw_text(), "data/brown/brown.txt");
  EXPECT_TRUE(ValidateTrainConfig(*config).ok()) << ValidateTrainConfig(*config);
}

TEST(ParseTrainConfigTest, UnknownTopLevelFieldNamesLineAndColumn) {
  absl::StatusOr<TrainConfig> config =
      ParseTrainConfig("steps: 10\nmodle {\n  num_layers: 2\n}\n", "job.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("job.textproto:2:1: "));
  EXPECT_THAT(config.status().message(), HasSubstr("no field named \"modle\""));
}

TEST(ParseTrainConfigTest, UnknownNestedFieldPointsAtItsName) {
  absl::StatusOr<TrainConfig> config =
      ParseTrainConfig("model {\n  num_layer: 2\n}\n", "job.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("job.textproto:2:3: "));
  EXPECT_THAT(config.status().message(), HasSubstr("num_layer"));
}

TEST(ParseTrainConfigTest, UnknownEnumValuePointsAtIt) {
  absl::StatusOr<TrainConfig> config =
      ParseTrainConfig("optimizer {\n  decay: COSIN\n}\n", "job.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("job.textproto:2:10: "));
  EXPECT_THAT(config.status().message(), HasSubstr("COSIN"));
}

TEST(ParseTrainConfigTest, WrongValueTypeIsAnError) {
  absl::StatusOr<TrainConfig> config = ParseTrainConfig("steps: \"many\"\n", "job.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("job.textproto:1:"));
}

TEST(LoadTrainConfigTest, MissingFileAndDirectoryAreClearErrors) {
  absl::StatusOr<TrainConfig> missing = LoadTrainConfig("configs/no_such_config.textproto");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("configs/no_such_config.textproto"));
  absl::StatusOr<TrainConfig> directory = LoadTrainConfig("configs");
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(directory.status().message(), HasSubstr("is a directory"));
}

TEST(LoadTrainConfigTest, ParseErrorsNameTheFile) {
  const char* dir = std::getenv("TEST_TMPDIR");
  ASSERT_NE(dir, nullptr);
  const std::string path = std::string(dir) + "/bad.textproto";
  std::ofstream(path) << "steps: 5\nsteps_typo: 3\n";
  absl::StatusOr<TrainConfig> config = LoadTrainConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr(path + ":2:1: "));
}

TEST(TrainConfigToTextTest, RoundTrips) {
  absl::StatusOr<TrainConfig> config = DefaultTrainConfig();
  ASSERT_TRUE(config.ok());
  absl::StatusOr<TrainConfig> again = ParseTrainConfig(TrainConfigToText(*config));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->SerializeAsString(), config->SerializeAsString());
}

TEST(ModelDimensionsForTest, FillsEveryFieldAndDefaultsTheFfnWidth) {
  transformer::GptConfig model;
  model.set_num_layers(6);
  model.set_num_heads(8);
  model.set_hidden_size(512);
  model.set_vocab_size(50257);
  topology::ModelDimensions dims = ModelDimensionsFor(model, 96);
  EXPECT_EQ(dims.num_layers, 6);
  EXPECT_EQ(dims.num_heads, 8);
  EXPECT_EQ(dims.hidden_size, 512);
  EXPECT_EQ(dims.ffn_hidden_size, 2048);
  EXPECT_EQ(dims.vocab_size, 50257);
  EXPECT_EQ(dims.seq_length, 96);
  model.set_ffn_hidden_size(1000);
  EXPECT_EQ(ModelDimensionsFor(model, 96).ffn_hidden_size, 1000);
}

TEST(TokenizerVocabSizeTest, KnownNamesAndAnError) {
  EXPECT_EQ(*TokenizerVocabSize("byte"), 256);
  EXPECT_EQ(*TokenizerVocabSize("gpt2"), 50257);
  absl::StatusOr<int64_t> unknown = TokenizerVocabSize("sentencepiece");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"sentencepiece\""));
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"byte\" or \"gpt2\""));
}

// One broken rule per case, applied to the valid default config; the error
// must name the field, the value and the rule.
struct BadCase {
  std::string name;
  std::function<void(TrainConfig&)> breaks;
  std::vector<std::string> message_parts;
};

std::vector<BadCase> BadCases() {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  return {
      {"vocab", [](TrainConfig& c) { c.mutable_model()->set_vocab_size(0); },
       {"model.vocab_size=0", ">= 1"}},
      {"context", [](TrainConfig& c) { c.mutable_model()->set_context_length(-4); },
       {"model.context_length=-4", ">= 1"}},
      {"layers", [](TrainConfig& c) { c.mutable_model()->set_num_layers(0); },
       {"model.num_layers=0", ">= 1"}},
      {"heads", [](TrainConfig& c) { c.mutable_model()->set_num_heads(0); },
       {"model.num_heads=0", ">= 1"}},
      {"hidden", [](TrainConfig& c) { c.mutable_model()->set_hidden_size(-1); },
       {"model.hidden_size=-1", ">= 1"}},
      {"ffn", [](TrainConfig& c) { c.mutable_model()->set_ffn_hidden_size(-8); },
       {"model.ffn_hidden_size=-8", ">= 0"}},
      {"heads_divide_hidden", [](TrainConfig& c) { c.mutable_model()->set_num_heads(3); },
       {"model.num_heads=3", "must divide model.hidden_size=128"}},
      {"untied", [](TrainConfig& c) { c.mutable_model()->set_tied_embeddings(false); },
       {"model.tied_embeddings=false", "not supported"}},
      {"init_std", [](TrainConfig& c) { c.mutable_model()->set_init_std(0); },
       {"model.init_std=0", "> 0"}},
      {"ln_eps", [](TrainConfig& c) { c.mutable_model()->set_layer_norm_epsilon(-1e-5f); },
       {"model.layer_norm_epsilon=-1e-05", "> 0"}},
      {"tokenizer", [](TrainConfig& c) { c.mutable_data()->set_tokenizer("chars"); },
       {"data.tokenizer=\"chars\"", "not a known tokenizer"}},
      {"vocab_vs_tokenizer",
       [](TrainConfig& c) { c.mutable_data()->set_tokenizer("gpt2"); },
       {"model.vocab_size=256", "data.tokenizer=\"gpt2\"", ">= 50257"}},
      {"seq_zero", [](TrainConfig& c) { c.mutable_data()->set_seq_length(0); },
       {"data.seq_length=0", ">= 1"}},
      {"seq_too_long", [](TrainConfig& c) { c.mutable_data()->set_seq_length(129); },
       {"data.seq_length=129", "<= model.context_length=128"}},
      {"train_path", [](TrainConfig& c) { c.mutable_data()->set_train_path(""); },
       {"data.train_path", "empty"}},
      {"val_fraction", [](TrainConfig& c) { c.mutable_data()->set_val_fraction(1.0); },
       {"data.val_fraction=1", "[0, 1)"}},
      {"steps", [](TrainConfig& c) { c.set_steps(0); }, {"steps=0", ">= 1"}},
      {"eval_interval", [](TrainConfig& c) { c.set_eval_interval(-1); },
       {"eval_interval=-1", ">= 0"}},
      {"eval_batches", [](TrainConfig& c) { c.set_eval_batches(0); },
       {"eval_batches=0", ">= 1"}},
      {"log_interval", [](TrainConfig& c) { c.set_log_interval(0); },
       {"log_interval=0", ">= 1"}},
      {"checkpoint_interval", [](TrainConfig& c) { c.set_checkpoint_interval(-2); },
       {"checkpoint_interval=-2", ">= 0"}},
      {"lr_zero", [](TrainConfig& c) { c.mutable_optimizer()->set_learning_rate(0); },
       {"optimizer.learning_rate=0", "> 0"}},
      {"lr_nan", [kNaN](TrainConfig& c) { c.mutable_optimizer()->set_learning_rate(kNaN); },
       {"optimizer.learning_rate=nan", "finite"}},
      {"min_lr_negative",
       [](TrainConfig& c) { c.mutable_optimizer()->set_min_learning_rate(-1e-4); },
       {"optimizer.min_learning_rate=-0.0001", ">= 0"}},
      {"min_lr_above_lr",
       [](TrainConfig& c) { c.mutable_optimizer()->set_min_learning_rate(2e-3); },
       {"optimizer.min_learning_rate=0.002", "<= optimizer.learning_rate=0.001"}},
      {"warmup_negative", [](TrainConfig& c) { c.mutable_optimizer()->set_warmup_steps(-1); },
       {"optimizer.warmup_steps=-1", ">= 0"}},
      {"decay_negative", [](TrainConfig& c) { c.mutable_optimizer()->set_decay_steps(-5); },
       {"optimizer.decay_steps=-5", ">= 0"}},
      {"decay_before_warmup", [](TrainConfig& c) { c.mutable_optimizer()->set_decay_steps(10); },
       {"optimizer.decay_steps=10", ">= optimizer.warmup_steps=20"}},
      {"beta1", [](TrainConfig& c) { c.mutable_optimizer()->set_beta1(1.0); },
       {"optimizer.beta1=1", "[0, 1)"}},
      {"beta2", [](TrainConfig& c) { c.mutable_optimizer()->set_beta2(-0.1); },
       {"optimizer.beta2=-0.1", "[0, 1)"}},
      {"epsilon", [](TrainConfig& c) { c.mutable_optimizer()->set_epsilon(0); },
       {"optimizer.epsilon=0", "> 0"}},
      {"weight_decay", [](TrainConfig& c) { c.mutable_optimizer()->set_weight_decay(-0.1); },
       {"optimizer.weight_decay=-0.1", ">= 0"}},
      {"grad_clip", [](TrainConfig& c) { c.mutable_optimizer()->set_grad_clip(-1); },
       {"optimizer.grad_clip=-1", ">= 0"}},
      {"loss_scale_with_fp32", [](TrainConfig& c) { c.mutable_loss_scale()->set_window(10); },
       {"loss_scale is set but precision=fp32", "fp16 only"}},
      {"loss_scale_with_bf16",
       [](TrainConfig& c) {
         c.set_precision(BF16);
         c.mutable_loss_scale()->set_dynamic(false);
       },
       {"loss_scale is set but precision=bf16", "fp16 only"}},
      {"loss_scale_negative",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_loss_scale()->set_initial_scale(-8);
       },
       {"loss_scale.initial_scale=-8", "> 0"}},
      {"loss_scale_inf",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_loss_scale()->set_initial_scale(std::numeric_limits<double>::infinity());
       },
       {"loss_scale.initial_scale=inf", "finite"}},
      {"loss_scale_window_zero",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_loss_scale()->set_window(0);
       },
       {"loss_scale.window=0", ">= 1"}},
      {"hysteresis_zero",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_loss_scale()->set_hysteresis(0);
       },
       {"loss_scale.hysteresis=0", ">= 1"}},
      {"min_scale_above_initial",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_loss_scale()->set_initial_scale(4);
         c.mutable_loss_scale()->set_min_scale(8);
       },
       {"loss_scale.min_scale=8", "<= loss_scale.initial_scale=4"}},
      {"fp16_with_ps",
       [](TrainConfig& c) {
         c.set_precision(FP16);
         c.mutable_layout()->set_dp_sync(topology::DpSync::PS);
       },
       {"precision=fp16", "layout.dp_sync=ps", "use fp32 or bf16"}},
      {"layout_tp_heads", [](TrainConfig& c) { c.mutable_layout()->set_tensor_parallel(3); },
       {"layout: ", "tensor_parallel=3"}},
      {"layout_micro_batch", [](TrainConfig& c) { c.mutable_layout()->set_micro_batch_size(0); },
       {"layout: ", "micro_batch_size"}},
  };
}

TEST(PrecisionTest, NamesRoundTripAndMapToDTypes) {
  for (Precision p : {FP32, BF16, FP16}) {
    absl::StatusOr<Precision> parsed = ParsePrecision(PrecisionName(p));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(ModelDType(FP32), DType::kFloat32);
  EXPECT_EQ(ModelDType(BF16), DType::kBFloat16);
  EXPECT_EQ(ModelDType(FP16), DType::kFloat16);
  const absl::Status bad = ParsePrecision("fp8").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("--precision=fp8 is not one of fp32, bf16, fp16"));
}

TEST(PrecisionTest, LossScaleFlagIsDynamicOrAPositiveNumber) {
  LossScaleConfig config;
  ASSERT_TRUE(ApplyLossScaleFlag("1024", &config).ok());
  EXPECT_FALSE(config.dynamic());
  EXPECT_EQ(config.initial_scale(), 1024);
  ASSERT_TRUE(ApplyLossScaleFlag("dynamic", &config).ok());
  EXPECT_TRUE(config.dynamic());
  EXPECT_EQ(config.initial_scale(), 1024);  // kept: the dynamic scaler starts there
  for (const char* bad : {"-4", "0", "inf", "nan", "static", ""}) {
    const absl::Status status = ApplyLossScaleFlag(bad, &config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("--loss_scale=", bad, " must be")));
  }
}

TEST(ValidateTrainConfigTest, EachBrokenRuleIsNamed) {
  absl::StatusOr<TrainConfig> base = DefaultTrainConfig();
  ASSERT_TRUE(base.ok());
  ASSERT_TRUE(ValidateTrainConfig(*base).ok());
  for (const BadCase& bad : BadCases()) {
    TrainConfig config = *base;
    bad.breaks(config);
    const absl::Status status = ValidateTrainConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad.name << ": " << status;
    for (const std::string& part : bad.message_parts) {
      EXPECT_THAT(status.message(), HasSubstr(part)) << bad.name;
    }
  }
}

TEST(ValidateTrainConfigTest, BoundaryValuesAreAccepted) {
  absl::StatusOr<TrainConfig> base = DefaultTrainConfig();
  ASSERT_TRUE(base.ok());
  std::vector<std::function<void(TrainConfig&)>> fine = {
      [](TrainConfig& c) { c.mutable_data()->set_seq_length(128); },  // == context
      [](TrainConfig& c) { c.mutable_optimizer()->set_min_learning_rate(1e-3); },  // == lr
      [](TrainConfig& c) { c.mutable_optimizer()->set_warmup_steps(200); },  // == steps
      [](TrainConfig& c) { c.mutable_optimizer()->set_warmup_steps(0); },
      [](TrainConfig& c) { c.set_steps(10); },  // A short run that never leaves warm-up.
      [](TrainConfig& c) { c.mutable_optimizer()->set_decay_steps(20); },  // == warmup
      [](TrainConfig& c) { c.mutable_optimizer()->set_grad_clip(0); },     // off
      [](TrainConfig& c) { c.mutable_optimizer()->set_weight_decay(0); },
      [](TrainConfig& c) { c.mutable_optimizer()->set_beta1(0); },
      [](TrainConfig& c) {
        c.set_eval_interval(0);  // validation off: eval_batches unused
        c.set_eval_batches(0);
      },
      [](TrainConfig& c) {
        c.mutable_model()->set_vocab_size(50304);
        c.mutable_data()->set_tokenizer("gpt2");
      },
      [](TrainConfig& c) { c.set_precision(BF16); },
      [](TrainConfig& c) { c.set_precision(FP16); },  // the default scaler
      [](TrainConfig& c) {
        c.set_precision(FP16);
        c.mutable_loss_scale()->set_dynamic(false);
        c.mutable_loss_scale()->set_initial_scale(1);
        c.mutable_loss_scale()->set_min_scale(1);  // == initial
        c.mutable_loss_scale()->set_window(1);
        c.mutable_loss_scale()->set_hysteresis(1);
      },
      [](TrainConfig& c) {
        c.mutable_layout()->set_tensor_parallel(2);
        c.mutable_layout()->set_pipeline_parallel(2);
        c.mutable_layout()->set_data_parallel(2);
      },
  };
  for (size_t i = 0; i < fine.size(); ++i) {
    TrainConfig config = *base;
    fine[i](config);
    EXPECT_TRUE(ValidateTrainConfig(config).ok()) << "case " << i << ": "
                                                  << ValidateTrainConfig(config);
  }
}

}  // namespace
}  // namespace trident::training
