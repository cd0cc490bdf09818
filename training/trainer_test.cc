#include "training/trainer.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "training/data/token_file.h"
#include "training/precision.h"
#include "training/train_config.h"
#include "training/trainer_testing.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;

using ::trident::training::testing::MustTrain;
using ::trident::training::testing::Sink;
using ::trident::training::testing::TinyOptions;
using ::trident::training::testing::WriteCorpus;

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { data_dir_ = WriteCorpus(io::testing::FreshTestDir("trainer_data")); }
  std::string data_dir_;
};

TEST_F(TrainerTest, LossFalls) {
  TrainOptions options = TinyOptions(data_dir_);
  options.config.set_steps(40);
  options.config.set_eval_interval(20);
  options.config.mutable_optimizer()->set_learning_rate(1e-2);
  const TrainResult result = MustTrain(options);
  ASSERT_EQ(result.losses.size(), 40u);
  for (double loss : result.losses) EXPECT_TRUE(std::isfinite(loss));
  EXPECT_NEAR(result.losses[0], std::log(256.0), 0.1);  // Near uniform at init.
  EXPECT_LT(result.losses.back(), result.losses[0] - 0.5)
      << ::testing::PrintToString(result.losses);
  ASSERT_EQ(result.val_losses.size(), 2u);
  EXPECT_EQ(result.val_losses[0].first, 20);
  EXPECT_EQ(result.val_losses[1].first, 40);
  EXPECT_LT(result.val_losses[1].second, result.val_losses[0].second);
}

// Every layout trains the serial model: the table of layouts lives in
// tests/equivalence (synthetic tokens, every gradient and parameter). Here the
// trainer's own data path: each replica's rows of the real loader's global
// batch and of the validation windows, for a 3D layout. fp32 on the CPU:
// relative difference under 1e-5.
TEST_F(TrainerTest, ThreeDimensionalLayoutReproducesTheSerialLosses) {
  TrainOptions serial_options = TinyOptions(data_dir_);
  serial_options.config.mutable_layout()->set_micro_batch_size(1);
  serial_options.config.mutable_layout()->set_num_micro_batches(8);
  const TrainResult serial = MustTrain(serial_options);

  TrainOptions options = TinyOptions(data_dir_);
  auto* layout = options.config.mutable_layout();
  layout->set_tensor_parallel(2);
  layout->set_pipeline_parallel(2);
  layout->set_data_parallel(2);
  layout->set_micro_batch_size(1);
  layout->set_num_micro_batches(4);
  const TrainResult result = MustTrain(options);
  ASSERT_EQ(result.losses.size(), serial.losses.size());
  for (size_t s = 0; s < serial.losses.size(); ++s) {
    EXPECT_NEAR(result.losses[s], serial.losses[s], 1e-5 * serial.losses[s]) << "step " << s + 1;
  }
  ASSERT_EQ(result.val_losses.size(), serial.val_losses.size());
  for (size_t v = 0; v < serial.val_losses.size(); ++v) {
    EXPECT_NEAR(result.val_losses[v].second, serial.val_losses[v].second,
                1e-5 * serial.val_losses[v].second);
  }
}

// Megatron's --global-batch-size: the micro-batch count follows dp, so the
// same global batch trains the same model whatever the layout.
TEST_F(TrainerTest, GlobalBatchSizeDerivesMicroBatches) {
  const auto with_global_batch = [&](int dp) {
    TrainOptions options = TinyOptions(data_dir_);
    auto* layout = options.config.mutable_layout();
    layout->set_data_parallel(dp);
    layout->set_micro_batch_size(1);
    layout->clear_num_micro_batches();
    layout->set_global_batch_size(4);
    options.config.set_steps(3);
    options.config.set_eval_interval(0);
    return MustTrain(options);
  };
  const TrainResult serial = with_global_batch(1);  // 4 micro-batches
  const TrainResult dp4 = with_global_batch(4);     // 1 micro-batch per replica
  ASSERT_EQ(serial.losses.size(), 3u);
  ASSERT_EQ(dp4.losses.size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_NEAR(dp4.losses[s], serial.losses[s], 1e-5 * serial.losses[s]) << "step " << s + 1;
  }

  TrainOptions indivisible = TinyOptions(data_dir_);
  indivisible.config.mutable_layout()->set_data_parallel(3);
  indivisible.config.mutable_layout()->clear_num_micro_batches();
  indivisible.config.mutable_layout()->set_global_batch_size(4);
  indivisible.log = &Sink();
  absl::StatusOr<TrainResult> refused = Train(indivisible);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("global_batch_size=4 is not a multiple of micro_batch_size=4 x "
                        "data_parallel=3 = 12"));
}

TEST_F(TrainerTest, ResumeGivesBitwiseTheSameLosses) {
  struct Layout {
    int tp, pp, dp = 1, zero_stage = 0;
  };
  // ZeRO stages 1 and 2: each replica saves and restores its own shard of the
  // moments; stage 3 its shard of the values too.
  for (const Layout& l : {Layout{1, 1}, Layout{2, 1}, Layout{1, 2}, Layout{1, 1, 2, 1},
                          Layout{1, 2, 2, 1}, Layout{1, 1, 2, 2}, Layout{1, 1, 2, 3},
                          Layout{2, 2, 2, 3}}) {
    SCOPED_TRACE(absl::StrCat("tp=", l.tp, " pp=", l.pp, " dp=", l.dp, " zero=", l.zero_stage));
    const auto with_layout = [&](TrainOptions options) {
      options.config.mutable_layout()->set_tensor_parallel(l.tp);
      options.config.mutable_layout()->set_pipeline_parallel(l.pp);
      options.config.mutable_layout()->set_data_parallel(l.dp);
      options.config.mutable_layout()->set_zero_stage(l.zero_stage);
      options.config.mutable_layout()->set_grad_bucket_mb(0.01f);
      return options;
    };
    const TrainResult whole = MustTrain(with_layout(TinyOptions(data_dir_)));
    const std::string ckpt =
        io::testing::FreshTestDir(absl::StrCat("resume_tp", l.tp, "_pp", l.pp, "_dp", l.dp,
                                               "_zero", l.zero_stage)) +
        "/ckpt";
    TrainOptions first = with_layout(TinyOptions(data_dir_));
    first.save_dir = ckpt;
    first.stop_at_step = 5;
    const TrainResult head = MustTrain(first);
    ASSERT_EQ(head.losses.size(), 5u);

    TrainOptions second = with_layout(TinyOptions(data_dir_));
    second.resume_dir = ckpt;
    const TrainResult tail = MustTrain(second);
    EXPECT_EQ(tail.first_step, 5);
    ASSERT_EQ(tail.losses.size(), 3u);
    for (int s = 0; s < 5; ++s) EXPECT_EQ(head.losses[s], whole.losses[s]) << "step " << s + 1;
    for (int s = 0; s < 3; ++s) {
      EXPECT_EQ(tail.losses[s], whole.losses[5 + s]) << "step " << 6 + s;  // Bitwise.
    }
  }
}

TEST_F(TrainerTest, DamagedOrMismatchedCheckpointsAreRefused) {
  const std::string ckpt = io::testing::FreshTestDir("damaged") + "/ckpt";
  TrainOptions first = TinyOptions(data_dir_);
  first.save_dir = ckpt;
  first.stop_at_step = 2;
  MustTrain(first);

  // Another layout reshards (tests/tools/train_reshard_test.sh); another
  // model shape is refused, naming the field.
  TrainOptions other_model = TinyOptions(data_dir_);
  other_model.config.mutable_model()->set_hidden_size(
      2 * other_model.config.model().hidden_size());
  other_model.resume_dir = ckpt;
  other_model.log = &Sink();
  const absl::StatusOr<TrainResult> refused = Train(other_model);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("model.hidden_size"));

  // Flip one byte in the middle of the rank file: its checksum catches it.
  const std::string rank_file = ckpt + "/latest/rank_00000.tensors";
  std::string bytes = io::testing::ReadWholeFile(rank_file);
  bytes[bytes.size() / 2] ^= 0x40;
  io::testing::WriteWholeFile(rank_file, bytes);
  TrainOptions resume = TinyOptions(data_dir_);
  resume.resume_dir = ckpt;
  resume.log = &Sink();
  absl::StatusOr<TrainResult> damaged = Train(resume);
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.status().message(), HasSubstr("rank_00000.tensors"));

  // Truncated.
  io::testing::WriteWholeFile(rank_file, bytes.substr(0, bytes.size() / 3));
  absl::StatusOr<TrainResult> truncated = Train(resume);
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("rank_00000.tensors"));
}

TEST_F(TrainerTest, MetricsFileHasOneLinePerStepAndValidationLines) {
  TrainOptions options = TinyOptions(data_dir_);
  options.metrics_out = io::testing::FreshTestDir("metrics") + "/m.jsonl";
  MustTrain(options);
  std::ifstream in(options.metrics_out);
  std::string line;
  int train_lines = 0, val_lines = 0, memory_lines = 0;
  while (std::getline(in, line)) {
    if (line.find("\"val_loss\"") != std::string::npos) {
      ++val_lines;
      continue;
    }
    if (line.find("\"param_bytes\"") != std::string::npos) {
      EXPECT_EQ(train_lines, 0) << "memory comes before the steps";
      ++memory_lines;
      continue;
    }
    ++train_lines;
    for (const char* key : {"\"step\":", "\"loss\":", "\"lr\":", "\"tokens_per_s\":"}) {
      EXPECT_THAT(line, HasSubstr(key));
    }
  }
  EXPECT_EQ(train_lines, 8);
  EXPECT_EQ(val_lines, 2);
  EXPECT_EQ(memory_lines, 1);  // one rank
}

// The measured memory per rank (the metrics file's first lines, one per rank)
// against the analytic figures of each ZeRO stage (fp32: parameters 4 bytes
// per element, gradients 4, AdamW's two moments 8).
TEST_F(TrainerTest, MemoryPerRankFollowsTheZeroStage) {
  struct Memory {
    int64_t params = 0, grads = 0, state = 0, activations = 0;
  };
  const auto measure = [&](int zero_stage) {
    TrainOptions options = TinyOptions(data_dir_);
    options.config.mutable_layout()->set_data_parallel(2);
    options.config.mutable_layout()->set_micro_batch_size(2);
    options.config.mutable_layout()->set_zero_stage(zero_stage);
    // ZeRO 2-3 keep the shards plus two pool buffers of one layer each
    // (data_parallel/grad_buckets.h): the saving shows on a deeper model.
    options.config.mutable_model()->set_num_layers(8);
    options.config.mutable_layout()->set_grad_bucket_mb(0.01f);
    options.config.set_steps(2);
    options.config.set_eval_interval(0);
    options.metrics_out =
        io::testing::FreshTestDir(absl::StrCat("memory_zero", zero_stage)) + "/m.jsonl";
    MustTrain(options);
    std::ifstream in(options.metrics_out);
    std::vector<Memory> ranks;
    std::string line;
    for (bool steps_began = false; std::getline(in, line);) {
      const nlohmann::json json = nlohmann::json::parse(line);
      if (!json.contains("param_bytes")) {
        steps_began = true;
        continue;
      }
      EXPECT_FALSE(steps_began) << "the memory lines come first, one per rank";
      EXPECT_EQ(json["rank"].get<int>(), static_cast<int>(ranks.size()));
      ranks.push_back({json["param_bytes"].get<int64_t>(), json["grad_bytes"].get<int64_t>(),
                       json["optimizer_state_bytes"].get<int64_t>(),
                       json["activation_peak_bytes"].get<int64_t>()});
    }
    EXPECT_EQ(ranks.size(), 2u);
    return ranks.empty() ? Memory() : ranks[0];
  };
  const Memory zero0 = measure(0), zero1 = measure(1), zero2 = measure(2), zero3 = measure(3);
  // 8 layers, hidden 32, vocabulary 256, context 32: Ψ = 110,912 parameters;
  // wte 256 x 32, wpe 32 x 32, a block 12 x 32^2 + 13 x 32.
  constexpr int64_t kPsi = 110912, kWte = 256 * 32, kBlock = 12 * 32 * 32 + 13 * 32;
  EXPECT_EQ(zero0.params, 4 * kPsi);
  EXPECT_EQ(zero0.state, 2 * zero0.params);
  // Buckets are padded to a multiple of dp: at most dp - 1 elements each.
  constexpr double kPadding = 4 * 64;
  EXPECT_GE(zero0.grads, zero0.params);
  EXPECT_LT(zero0.grads, zero0.params + kPadding);
  std::printf("memory per rank (bytes), dp 2: ZeRO 0 grads %lld state %lld; ZeRO 1 grads %lld "
              "state %lld; ZeRO 2 grads %lld state %lld; ZeRO 3 params %lld grads %lld\n",
              static_cast<long long>(zero0.grads), static_cast<long long>(zero0.state),
              static_cast<long long>(zero1.grads), static_cast<long long>(zero1.state),
              static_cast<long long>(zero2.grads), static_cast<long long>(zero2.state),
              static_cast<long long>(zero3.params), static_cast<long long>(zero3.grads));
  // Stage 1: the moments of this rank's half (to the padding of the last
  // shard); the buckets are reduce-scattered in place: stage 0's gradients.
  EXPECT_EQ(zero1.params, zero0.params);
  EXPECT_NEAR(static_cast<double>(zero1.state), zero0.state / 2.0, 2 * kPadding);
  EXPECT_EQ(zero1.grads, zero0.grads);
  // Stage 2: the shards of every pooled gradient (Ψ - wte, halved), the tied
  // embedding's full buffer (written by the head's and the embedding's
  // passes), and two pool buffers of the largest bucket (a block).
  EXPECT_NEAR(static_cast<double>(zero2.state), zero0.state / 2.0, 2 * kPadding);
  EXPECT_NEAR(static_cast<double>(zero2.grads), 4.0 * ((kPsi - kWte) / 2 + kWte + 2 * kBlock),
              kPadding);
  // Stage 3: half the values, plus two consecutive blocks gathered at once
  // (a layer and the next one prefetched); the gradients as stage 2's.
  EXPECT_NEAR(static_cast<double>(zero3.params), 4.0 * (kPsi / 2 + 2 * kBlock), kPadding);
  EXPECT_EQ(zero3.grads, zero2.grads);
  EXPECT_EQ(zero3.state, zero2.state);
  // The activations do not depend on the stage.
  EXPECT_GT(zero0.activations, 0);
  EXPECT_EQ(zero1.activations, zero0.activations);
  EXPECT_EQ(zero2.activations, zero0.activations);
  EXPECT_EQ(zero3.activations, zero0.activations);
}

// Mixed precision: the checkpoint holds the fp32 master weights (as
// "param/<name>") and, for fp16, the loss scaler's state; a resumed run is
// bitwise the run that never stopped. The fp16 scaler starts far too high
// with a short window, so it skips, halves and grows across the checkpoint.
// Under ZeRO 1, 2 and 3 each replica saves and restores its windows' masters
// (under ZeRO 3 the resumed 16-bit value shards are the masters, rounded).
TEST_F(TrainerTest, MixedPrecisionResumesBitwiseFromTheMasterWeights) {
  struct Layout {
    int tp, pp, dp, zero_stage;
    bool offload = false;
  };
  for (Precision precision : {BF16, FP16}) {
    for (const Layout& l :
         {Layout{1, 2, 1, 0}, Layout{2, 2, 1, 0}, Layout{1, 1, 2, 1}, Layout{2, 1, 2, 2},
          Layout{1, 1, 2, 1, /*offload=*/true}, Layout{1, 1, 2, 3}, Layout{2, 2, 2, 3},
          Layout{1, 1, 2, 3, /*offload=*/true}}) {
      const int tp = l.tp;
      SCOPED_TRACE(absl::StrCat(PrecisionName(precision), " tp=", l.tp, " pp=", l.pp, " dp=",
                                l.dp, " zero=", l.zero_stage));
      const auto configured = [&](TrainOptions options) {
        options.config.set_precision(precision);
        options.config.mutable_layout()->set_tensor_parallel(l.tp);
        options.config.mutable_layout()->set_pipeline_parallel(l.pp);
        options.config.mutable_layout()->set_data_parallel(l.dp);
        options.config.mutable_layout()->set_zero_stage(l.zero_stage);
        options.config.mutable_layout()->set_cpu_offload(l.offload);
        options.config.mutable_layout()->set_grad_bucket_mb(0.01f);
        if (precision == FP16) {
          options.config.mutable_loss_scale()->set_initial_scale(std::ldexp(1.0, 24));
          options.config.mutable_loss_scale()->set_hysteresis(1);
          options.config.mutable_loss_scale()->set_window(2);
        }
        return options;
      };
      const TrainResult whole = MustTrain(configured(TinyOptions(data_dir_)));
      const std::string ckpt =
          io::testing::FreshTestDir(
              absl::StrCat("resume_", PrecisionName(precision), "_tp", tp, "_pp", l.pp, "_dp",
                           l.dp, "_zero", l.zero_stage, l.offload ? "_offload" : "")) +
          "/ckpt";
      TrainOptions first = configured(TinyOptions(data_dir_));
      first.save_dir = ckpt;
      first.stop_at_step = 5;
      MustTrain(first);
      TrainOptions second = configured(TinyOptions(data_dir_));
      second.resume_dir = ckpt;
      const TrainResult tail = MustTrain(second);
      ASSERT_EQ(tail.losses.size(), 3u);
      for (int s = 0; s < 3; ++s) {
        EXPECT_EQ(tail.losses[s], whole.losses[5 + s]) << "step " << 6 + s;  // Bitwise.
      }
    }
  }
}

// FP16: every metrics line carries the step's loss_scale and whether it was
// skipped; bf16 lines do not (there is no scaler). A scale of 2^30 overflows
// the first steps, which are skipped and leave the parameters unchanged.
TEST_F(TrainerTest, Fp16MetricsCarryTheLossScaleAndSkippedSteps) {
  for (Precision precision : {BF16, FP16}) {
    TrainOptions options = TinyOptions(data_dir_);
    options.config.set_precision(precision);
    options.config.set_steps(6);
    options.config.set_eval_interval(0);
    if (precision == FP16) {
      options.config.mutable_loss_scale()->set_initial_scale(std::ldexp(1.0, 30));
      options.config.mutable_loss_scale()->set_hysteresis(1);
    }
    options.metrics_out =
        io::testing::FreshTestDir(absl::StrCat("fp16_metrics_", PrecisionName(precision))) +
        "/m.jsonl";
    MustTrain(options);
    std::ifstream in(options.metrics_out);
    int lines = 0, skipped = 0;
    double previous_scale = 0;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json json = nlohmann::json::parse(line);
      if (!json.contains("loss")) continue;
      ++lines;
      if (precision == BF16) {
        EXPECT_FALSE(json.contains("loss_scale")) << line;
        continue;
      }
      ASSERT_TRUE(json.contains("loss_scale") && json.contains("skipped")) << line;
      const double scale = json["loss_scale"].get<double>();
      if (json["skipped"].get<bool>()) {
        ++skipped;
        EXPECT_TRUE(previous_scale == 0 || scale == previous_scale / 2 ||
                    scale == previous_scale)
            << line;
      }
      previous_scale = scale;
    }
    EXPECT_EQ(lines, 6);
    if (precision == FP16) {
      EXPECT_GE(skipped, 1) << "2^30 must overflow fp16";
    }
  }
}

TEST_F(TrainerTest, UnsupportedFeaturesAreRefusedByName) {
  struct Case {
    std::function<void(TrainOptions&)> set;
    const char* message;
  };
  const std::vector<Case> cases = {
      {[](TrainOptions& o) { o.config.mutable_layout()->set_pipeline_parallel(3); },
       "= 3 stage chunks exceed num_layers=2"},
      // Sequence parallelism runs (tests/equivalence) but
      // splits nothing on one tensor-parallel rank.
      {[](TrainOptions& o) { o.config.mutable_layout()->set_sequence_parallel(true); },
       "sequence_parallel=true needs tensor_parallel > 1"},
      // This test does not link //training/cuda:cuda_accelerator: a CPU-only
      // build's answer. Layouts are refused first, GPU or not.
      {[](TrainOptions& o) { o.device = "cuda"; },
       "--device=cuda is not supported yet: this binary was built without CUDA"},
      {[](TrainOptions& o) {
         o.device = "cuda";
         o.config.mutable_layout()->set_tensor_parallel(2);
       },
       "--device=cuda is not supported yet: with tensor_parallel=2, pipeline_parallel=1, "
       "data_parallel=1: a GPU runs the serial layout (1 x 1 x 1) only; NCCL communicators are "
       "not built yet"},
      {[](TrainOptions& o) {
         o.device = "cuda";
         o.backend = "mpi";
       },
       "--backend=mpi is not supported yet: with --device=cuda"},
      {[](TrainOptions& o) {
         o.device = "cuda";
         o.config.mutable_layout()->set_dp_sync(topology::DpSync::PS);
       },
       "layout.dp_sync=ps is not supported yet: with --device=cuda"},
      // A conversion trains nothing: no servers to run.
      {[](TrainOptions& o) {
         o.config.mutable_layout()->set_data_parallel(2);
         o.config.mutable_layout()->set_dp_sync(topology::DpSync::PS);
         o.convert_to = "/tmp/never_written_ps_conversion";
       },
       "--convert_to=/tmp/never_written_ps_conversion is not supported yet: a dp_sync=ps job "
       "converts no checkpoint"},

      {[](TrainOptions& o) { o.backend = "gloo"; }, "--backend=gloo is unknown"},
  };
  for (const Case& c : cases) {
    TrainOptions options = TinyOptions(data_dir_);
    c.set(options);
    absl::StatusOr<TrainResult> result = Train(options);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
}

TEST_F(TrainerTest, BadDataIsAClearError) {
  TrainOptions options = TinyOptions(data_dir_);
  options.config.mutable_data()->set_train_path(data_dir_ + "/missing/train.bin");
  options.config.mutable_data()->set_val_path(data_dir_ + "/missing/elsewhere.bin");
  absl::StatusOr<TrainResult> missing = Train(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("missing/train.bin"));

  // A token file truncated by a crash.
  const std::string bytes = io::testing::ReadWholeFile(data_dir_ + "/train.bin");
  io::testing::WriteWholeFile(data_dir_ + "/train.bin", bytes.substr(0, bytes.size() - 10));
  absl::StatusOr<TrainResult> truncated = Train(TinyOptions(data_dir_));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("train.bin"));
}

}  // namespace
}  // namespace trident::training
