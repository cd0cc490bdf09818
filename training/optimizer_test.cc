#include "training/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;

// A tiny model: a matrix-like "w" (decayed) and a bias-like "b" (not decayed).
struct TinyModel {
  std::vector<std::unique_ptr<Parameter>> storage;

  Parameter& Add(const std::string& name, std::vector<float> value, bool decay) {
    auto p = std::make_unique<Parameter>();
    p->name = name;
    const int64_t n = static_cast<int64_t>(value.size());
    p->value = Tensor::FromVector<float>(value, {n});
    p->grad = Tensor::Zeros({n}, DType::kFloat32);
    p->weight_decay = decay;
    p->layout.global_shape = {n};
    storage.push_back(std::move(p));
    return *storage.back();
  }
  ParameterList List() const {
    ParameterList list;
    for (const auto& p : storage) list.push_back(p.get());
    return list;
  }
  Parameter& operator[](int i) { return *storage[i]; }
};

TinyModel MakeModel() {
  TinyModel m;
  m.Add("w", {1.0f, -2.0f}, /*decay=*/true);
  m.Add("b", {0.5f}, /*decay=*/false);
  return m;
}

AdamWSettings Settings() {
  AdamWSettings s;
  s.beta1 = 0.9;
  s.beta2 = 0.95;
  s.epsilon = 1e-8;
  s.weight_decay = 0.1;
  return s;
}

void SetGrads(TinyModel& m, std::vector<float> w, std::vector<float> b) {
  m[0].grad.CopyFrom(w);
  m[1].grad.CopyFrom(b);
}

std::unique_ptr<AdamW> MakeOptimizer(const ExecContext& ctx, const TinyModel& m) {
  absl::StatusOr<std::unique_ptr<AdamW>> opt = AdamW::Create(ctx, m.List(), Settings());
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(opt).value();
}

// Worked by hand (betas 0.9/0.95, eps 1e-8, wd 0.1; lr 0.1 then 0.05):
// step 1, w = (1, -2), g = (0.5, -1): decay x 0.99 -> (0.99, -1.98);
//   m = 0.1 g, v = 0.05 g^2; bias corrections 0.1 and 0.05 give m_hat = g,
//   v_hat = g^2, so p -= 0.1 g / (|g| + 1e-8) -> (0.8900000020, -1.8800000010).
//   b = 0.5, g = 0.25, no decay: 0.5 - 0.1 -> 0.4000000040.
// step 2, g = (0.1, 0.2): decay x 0.995 -> (0.88555, -1.8706);
//   m = (0.055, -0.07), v = (0.012375, 0.0495); corrections 0.19 and 0.0975:
//   m_hat = (0.2894737, -0.3684211), sqrt(v_hat) = (0.3562627, 0.7125253);
//   p -= 0.05 m_hat / sqrt(v_hat) -> (0.8449235604, -1.8447468105).
//   b, g = -0.5: m = -0.0275, v = 0.01546875 -> 0.4181687011.
TEST(AdamWTest, TwoStepsMatchTheHandComputedValues) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  EXPECT_EQ(opt->step(), 0);

  SetGrads(m, {0.5f, -1.0f}, {0.25f});
  opt->Step(ctx, 0.1);
  EXPECT_EQ(opt->step(), 1);
  std::vector<float> w = m[0].value.ToVector<float>();
  // fp32 storage: 1e-6 relative to values of order 1.
  EXPECT_NEAR(w[0], 0.8900000020, 1e-6);
  EXPECT_NEAR(w[1], -1.8800000010, 2e-6);
  EXPECT_NEAR(m[1].value.ToVector<float>()[0], 0.4000000040, 1e-6);
  EXPECT_NEAR(opt->exp_avg(0).ToVector<float>()[1], -0.1, 1e-7);
  EXPECT_NEAR(opt->exp_avg_sq(0).ToVector<float>()[0], 0.0125, 1e-8);

  SetGrads(m, {0.1f, 0.2f}, {-0.5f});
  opt->Step(ctx, 0.05);
  EXPECT_EQ(opt->step(), 2);
  w = m[0].value.ToVector<float>();
  EXPECT_NEAR(w[0], 0.8449235604, 1e-6);
  EXPECT_NEAR(w[1], -1.8447468105, 2e-6);
  EXPECT_NEAR(m[1].value.ToVector<float>()[0], 0.4181687011, 1e-6);
  EXPECT_NEAR(opt->exp_avg(1).ToVector<float>()[0], -0.0275, 1e-7);
  EXPECT_NEAR(opt->exp_avg_sq(1).ToVector<float>()[0], 0.01546875, 1e-8);
}

TEST(AdamWTest, WeightDecayFollowsTheParameterFlag) {
  // With zero gradients Adam's update is 0, so only the decay moves a value.
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  opt->Step(ctx, 0.5);
  EXPECT_FLOAT_EQ(m[0].value.ToVector<float>()[0], 1.0f * (1.0f - 0.05f));
  EXPECT_FLOAT_EQ(m[0].value.ToVector<float>()[1], -2.0f * (1.0f - 0.05f));
  EXPECT_EQ(m[1].value.ToVector<float>()[0], 0.5f);
}

TEST(AdamWTest, GradScaleScalesTheGradientTheMomentsSee) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  SetGrads(m, {0.5f, -1.0f}, {0.25f});
  opt->Step(ctx, 0.1, /*grad_scale=*/0.5f);
  // m = (1 - beta1) * 0.5 * g; the gradient tensor itself is untouched.
  EXPECT_NEAR(opt->exp_avg(0).ToVector<float>()[0], 0.025, 1e-8);
  EXPECT_NEAR(opt->exp_avg_sq(0).ToVector<float>()[1], 0.05 * 0.25, 1e-8);
  EXPECT_EQ(m[0].grad.ToVector<float>()[1], -1.0f);
}

TEST(AdamWTest, ZeroGradClearsEveryGradient) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  SetGrads(m, {0.5f, -1.0f}, {0.25f});
  opt->ZeroGrad(ctx);
  EXPECT_EQ(m[0].grad.ToVector<float>(), std::vector<float>({0.0f, 0.0f}));
  EXPECT_EQ(m[1].grad.ToVector<float>(), std::vector<float>({0.0f}));
}

TEST(GradientNormTest, NormFilterAndReducer) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  // "w" is a tp shard, "b" replicated.
  m[0].layout.split_dim = 0;
  m[0].layout.num_shards = 2;
  m[0].layout.global_shape = {4};
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  SetGrads(m, {0.5f, -1.0f}, {0.25f});

  absl::StatusOr<double> norm = opt->GradientNorm(ctx);
  ASSERT_TRUE(norm.ok());
  EXPECT_NEAR(*norm, std::sqrt(1.3125), 1e-12);  // 0.25 + 1 + 0.0625

  opt->SetNormFilter(CountReplicatedOnlyOnTensorRank0(1));
  EXPECT_TRUE(opt->CountsInNorm(0));
  EXPECT_FALSE(opt->CountsInNorm(1));
  EXPECT_NEAR(*opt->GradientNorm(ctx), std::sqrt(1.25), 1e-12);

  opt->SetNormFilter(CountReplicatedOnlyOnTensorRank0(0));
  EXPECT_NEAR(*opt->GradientNorm(ctx), std::sqrt(1.3125), 1e-12);

  // The reducer sees this rank's partial sum and returns the group's.
  double seen = -1;
  absl::StatusOr<double> reduced = opt->GradientNorm(ctx, [&seen](double& sum) {
    seen = sum;
    sum += 2.6875;  // what the other ranks hold
    return absl::OkStatus();
  });
  ASSERT_TRUE(reduced.ok());
  EXPECT_NEAR(seen, 1.3125, 1e-12);
  EXPECT_NEAR(*reduced, 2.0, 1e-12);

  absl::StatusOr<double> failed = opt->GradientNorm(
      ctx, [](double&) { return absl::DeadlineExceededError("all-reduce timed out"); });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(GradientNormTest, NonFiniteGradientsGiveANonFiniteNorm) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  SetGrads(m, {0.5f, std::numeric_limits<float>::quiet_NaN()}, {0.25f});
  EXPECT_TRUE(std::isnan(*opt->GradientNorm(ctx)));
  SetGrads(m, {0.5f, 1.0f}, {std::numeric_limits<float>::infinity()});
  EXPECT_TRUE(std::isinf(*opt->GradientNorm(ctx)));
}

TEST(ClipScaleTest, ClipsOnlyAboveTheLimit) {
  EXPECT_EQ(ClipScale(0.5, 1.0), 1.0f);
  EXPECT_EQ(ClipScale(0.0, 1.0), 1.0f);
  // torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6).
  EXPECT_FLOAT_EQ(ClipScale(4.0, 1.0), static_cast<float>(1.0 / (4.0 + 1e-6)));
  EXPECT_FLOAT_EQ(ClipScale(std::sqrt(1.3125), 1.0),
                  static_cast<float>(1.0 / (std::sqrt(1.3125) + 1e-6)));
  // Scaled gradients then have (just under) the limit as their norm.
  const double norm = 37.5;
  EXPECT_NEAR(norm * ClipScale(norm, 2.0), 2.0, 1e-6);
  // Off.
  EXPECT_EQ(ClipScale(1e9, 0.0), 1.0f);
  // No finite factor repairs a non-finite norm.
  EXPECT_TRUE(std::isnan(ClipScale(std::numeric_limits<double>::quiet_NaN(), 1.0)));
  EXPECT_TRUE(std::isnan(ClipScale(std::numeric_limits<double>::infinity(), 1.0)));
}

TEST(AdamWCreateTest, RefusesBadParameterLists) {
  const ExecContext ctx = ExecContext::Cpu();
  {
    TinyModel m = MakeModel();
    m[1].name = "w";
    auto opt = AdamW::Create(ctx, m.List(), Settings());
    EXPECT_EQ(opt.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(opt.status().message(), HasSubstr("'w' appears twice"));
  }
  {
    TinyModel m = MakeModel();
    m[1].name = "";
    EXPECT_THAT(AdamW::Create(ctx, m.List(), Settings()).status().message(),
                HasSubstr("empty name"));
  }
  {
    TinyModel m = MakeModel();
    m[0].grad = Tensor::Zeros({3}, DType::kFloat32);
    auto opt = AdamW::Create(ctx, m.List(), Settings());
    EXPECT_THAT(opt.status().message(), HasSubstr("'w' has grad [3] for value [2]"));
  }
  {
    TinyModel m = MakeModel();
    m[1].grad = Tensor();
    EXPECT_THAT(AdamW::Create(ctx, m.List(), Settings()).status().message(),
                HasSubstr("'b' has no grad"));
  }
  {
    TinyModel m = MakeModel();
    m[0].value = Tensor::Zeros({2}, DType::kInt32);
    EXPECT_THAT(AdamW::Create(ctx, m.List(), Settings()).status().message(),
                HasSubstr("fp32"));
  }
  {
    TinyModel m = MakeModel();
    m[0].value = Tensor::Zeros({2, 2}, DType::kFloat32).Transpose(0, 1).Select(0, 0);
    m[0].grad = Tensor::Zeros({2}, DType::kFloat32);
    EXPECT_THAT(AdamW::Create(ctx, m.List(), Settings()).status().message(),
                HasSubstr("contiguous"));
  }
  {
    TinyModel m = MakeModel();
    AdamWSettings s = Settings();
    s.beta2 = 1.0;
    EXPECT_THAT(AdamW::Create(ctx, m.List(), s).status().message(), HasSubstr("[0, 1)"));
    s = Settings();
    s.epsilon = 0;
    EXPECT_THAT(AdamW::Create(ctx, m.List(), s).status().message(), HasSubstr("epsilon=0"));
  }
}

TEST(AdamWSettingsTest, ComeFromTheConfig) {
  OptimizerConfig config;
  config.set_beta1(0.8);
  config.set_beta2(0.99);
  config.set_epsilon(1e-6);
  config.set_weight_decay(0.05);
  const AdamWSettings s = AdamWSettingsFrom(config);
  EXPECT_EQ(s.beta1, 0.8);
  EXPECT_EQ(s.beta2, 0.99);
  EXPECT_EQ(s.epsilon, 1e-6);
  EXPECT_EQ(s.weight_decay, 0.05);
  // Defaults of the proto are GPT training's usual ones.
  const AdamWSettings d = AdamWSettingsFrom(OptimizerConfig());
  EXPECT_EQ(d.beta2, 0.95);
  EXPECT_EQ(d.weight_decay, 0.1);
}

// ---------------------------------------------------------------------------
// Checkpoints.

// What a checkpoint reader hands back: owning copies of the blobs.
checkpoint::TensorSet ToTensorSet(const std::vector<checkpoint::TensorBlob>& blobs) {
  std::vector<checkpoint::LoadedTensor> loaded;
  for (const checkpoint::TensorBlob& blob : blobs) {
    loaded.push_back({blob.name, blob.dtype, blob.shape,
                      std::vector<std::byte>(blob.bytes.begin(), blob.bytes.end())});
  }
  absl::StatusOr<checkpoint::TensorSet> set =
      checkpoint::TensorSet::Create("test checkpoint", std::move(loaded));
  EXPECT_TRUE(set.ok()) << set.status();
  return std::move(set).value();
}

std::vector<uint32_t> Bits(const Tensor& t) {
  std::vector<float> values = t.ToVector<float>();
  std::vector<uint32_t> bits(values.size());
  std::memcpy(bits.data(), values.data(), values.size() * sizeof(float));
  return bits;
}

// Trains `m` two steps and returns the optimizer.
std::unique_ptr<AdamW> TrainTwoSteps(const ExecContext& ctx, TinyModel& m) {
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, m);
  SetGrads(m, {0.5f, -1.0f}, {0.25f});
  opt->Step(ctx, 0.1);
  SetGrads(m, {0.1f, 0.2f}, {-0.5f});
  opt->Step(ctx, 0.05);
  return opt;
}

TEST(AdamWCheckpointTest, BlobNamesShapesAndStep) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  std::unique_ptr<AdamW> opt = TrainTwoSteps(ctx, m);
  std::vector<checkpoint::TensorBlob> blobs;
  opt->AppendStateBlobs(blobs);
  std::vector<std::string> names;
  for (const auto& b : blobs) names.push_back(b.name);
  EXPECT_THAT(names, ::testing::ElementsAre("param/w", "adam_m/w", "adam_v/w", "param/b",
                                            "adam_m/b", "adam_v/b", "optimizer/step"));
  EXPECT_TRUE(checkpoint::ValidateBlobs(blobs).ok());
  EXPECT_EQ(blobs[0].shape, std::vector<int64_t>({2}));
  EXPECT_EQ(blobs[6].dtype, DType::kInt64);
  EXPECT_TRUE(blobs[6].shape.empty());
  int64_t step = 0;
  std::memcpy(&step, blobs[6].bytes.data(), sizeof(step));
  EXPECT_EQ(step, 2);
}

TEST(AdamWCheckpointTest, RoundTripIsBitwiseAndTrainingContinuesIdentically) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel a = MakeModel();
  std::unique_ptr<AdamW> opt_a = TrainTwoSteps(ctx, a);
  std::vector<checkpoint::TensorBlob> blobs;
  opt_a->AppendStateBlobs(blobs);
  const checkpoint::TensorSet saved = ToTensorSet(blobs);

  // A fresh model with other values: everything must come from the checkpoint.
  TinyModel b;
  b.Add("w", {7.0f, 7.0f}, true);
  b.Add("b", {7.0f}, false);
  std::unique_ptr<AdamW> opt_b = MakeOptimizer(ctx, b);
  ASSERT_TRUE(opt_b->LoadState(saved).ok());
  EXPECT_EQ(opt_b->step(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Bits(b[i].value), Bits(a[i].value)) << i;
    EXPECT_EQ(Bits(opt_b->exp_avg(i)), Bits(opt_a->exp_avg(i))) << i;
    EXPECT_EQ(Bits(opt_b->exp_avg_sq(i)), Bits(opt_a->exp_avg_sq(i))) << i;
  }
  // The third step (bias corrections use step 3 on both) gives the same bits.
  for (TinyModel* m : {&a, &b}) SetGrads(*m, {-0.3f, 0.7f}, {0.125f});
  opt_a->Step(ctx, 0.02);
  opt_b->Step(ctx, 0.02);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Bits(b[i].value), Bits(a[i].value)) << i;
  EXPECT_EQ(opt_b->step(), 3);
}

// Applies `edit` to a saved state and expects LoadState to refuse it with
// `message` and leave the target optimizer and parameters untouched.
void ExpectRefused(const std::function<void(std::vector<checkpoint::LoadedTensor>&)>& edit,
                   const std::string& message) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel a = MakeModel();
  std::unique_ptr<AdamW> opt_a = TrainTwoSteps(ctx, a);
  std::vector<checkpoint::TensorBlob> blobs;
  opt_a->AppendStateBlobs(blobs);
  std::vector<checkpoint::LoadedTensor> loaded;
  for (const auto& blob : blobs) {
    loaded.push_back({blob.name, blob.dtype, blob.shape,
                      std::vector<std::byte>(blob.bytes.begin(), blob.bytes.end())});
  }
  edit(loaded);
  absl::StatusOr<checkpoint::TensorSet> set =
      checkpoint::TensorSet::Create("checkpoint 'ckpt' rank 0", std::move(loaded));
  ASSERT_TRUE(set.ok()) << set.status();

  TinyModel b = MakeModel();
  std::unique_ptr<AdamW> opt_b = MakeOptimizer(ctx, b);
  const absl::Status status = opt_b->LoadState(*set);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(message));
  EXPECT_THAT(status.message(), HasSubstr("checkpoint 'ckpt' rank 0"));
  EXPECT_EQ(opt_b->step(), 0);
  EXPECT_EQ(b[0].value.ToVector<float>(), std::vector<float>({1.0f, -2.0f}));
  EXPECT_EQ(b[1].value.ToVector<float>(), std::vector<float>({0.5f}));
  EXPECT_EQ(opt_b->exp_avg(0).ToVector<float>(), std::vector<float>({0.0f, 0.0f}));
}

checkpoint::LoadedTensor* Find(std::vector<checkpoint::LoadedTensor>& set,
                               const std::string& name) {
  for (auto& t : set) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

TEST(AdamWCheckpointTest, RefusesAShapeMismatch) {
  ExpectRefused(
      [](std::vector<checkpoint::LoadedTensor>& set) {
        checkpoint::LoadedTensor* t = Find(set, "adam_v/w");
        t->shape = {1};
        t->bytes.resize(4);
      },
      "adam_v/w");
}

TEST(AdamWCheckpointTest, RefusesADtypeMismatch) {
  ExpectRefused(
      [](std::vector<checkpoint::LoadedTensor>& set) {
        checkpoint::LoadedTensor* t = Find(set, "optimizer/step");
        t->dtype = DType::kInt32;
        t->bytes.resize(4);
      },
      "optimizer/step");
}

TEST(AdamWCheckpointTest, RefusesAMissingTensor) {
  ExpectRefused(
      [](std::vector<checkpoint::LoadedTensor>& set) {
        std::erase_if(set, [](const auto& t) { return t.name == "adam_m/b"; });
      },
      "adam_m/b");
}

TEST(AdamWCheckpointTest, RefusesAParameterThisModelDoesNotHave) {
  ExpectRefused(
      [](std::vector<checkpoint::LoadedTensor>& set) {
        checkpoint::LoadedTensor extra = *Find(set, "param/b");
        extra.name = "param/h.9.mlp.c_fc.bias";
        set.push_back(extra);
      },
      "'h.9.mlp.c_fc.bias', which this model");
}

TEST(AdamWCheckpointTest, RefusesANegativeStep) {
  ExpectRefused(
      [](std::vector<checkpoint::LoadedTensor>& set) {
        const int64_t step = -1;
        std::memcpy(Find(set, "optimizer/step")->bytes.data(), &step, sizeof(step));
      },
      "optimizer/step=-1");
}

TEST(AdamWCheckpointTest, OtherTensorsAreIgnored) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel a = MakeModel();
  std::unique_ptr<AdamW> opt_a = TrainTwoSteps(ctx, a);
  std::vector<checkpoint::TensorBlob> blobs;
  opt_a->AppendStateBlobs(blobs);
  const int64_t rng = 42;
  blobs.push_back({"rng/state", DType::kInt64, {},
                   absl::MakeConstSpan(reinterpret_cast<const std::byte*>(&rng), sizeof(rng))});
  TinyModel b = MakeModel();
  std::unique_ptr<AdamW> opt_b = MakeOptimizer(ctx, b);
  EXPECT_TRUE(opt_b->LoadState(ToTensorSet(blobs)).ok());
}

}  // namespace
}  // namespace trident::training

namespace trident::training {
namespace {

// ZeRO stage 1: the optimizer keeps moments for its windows only, updates
// exactly those elements from the windows' gradients, and checkpoints the
// windows' moments, which restore bitwise.
struct ShardedFixture {
  TinyModel model = MakeModel();
  // This replica owns w[1] and b[0]; their summed gradients live here.
  Tensor w_grad = Tensor::FromVector<float>({-1.0f}, {1});
  Tensor b_grad = Tensor::FromVector<float>({0.25f}, {1});
  std::unique_ptr<AdamW> opt;

  explicit ShardedFixture(const ExecContext& ctx) {
    opt = MakeOptimizer(ctx, model);
    EXPECT_TRUE(opt->ShardState(ctx, {{.param = &model[0], .offset = 1, .length = 1,
                                       .grad = w_grad},
                                      {.param = &model[1], .offset = 0, .length = 1,
                                       .grad = b_grad}})
                    .ok());
  }
};

TEST(AdamWShardedTest, UpdatesOnlyTheWindowsFromTheirGradients) {
  const ExecContext ctx = ExecContext::Cpu();
  ShardedFixture sharded(ctx);
  // The full optimizer on the same gradients, for the owned elements.
  TinyModel full = MakeModel();
  std::unique_ptr<AdamW> opt = MakeOptimizer(ctx, full);
  SetGrads(full, {0.5f, -1.0f}, {0.25f});
  opt->Step(ctx, 0.1);
  sharded.opt->Step(ctx, 0.1);
  const std::vector<float> w = sharded.model[0].value.ToVector<float>();
  EXPECT_EQ(w[0], 1.0f);  // Not owned: another replica updates it.
  EXPECT_EQ(w[1], full[0].value.ToVector<float>()[1]);
  EXPECT_EQ(Bits(sharded.model[1].value), Bits(full[1].value));
  EXPECT_EQ(sharded.opt->exp_avg(0).numel(), 1);
  // The norm counts the windows' gradients: 1 + 1/16.
  EXPECT_DOUBLE_EQ(*sharded.opt->GradientNorm(ctx), std::sqrt(1.0625));
}

TEST(AdamWShardedTest, CheckpointHoldsTheShardAndRestoresBitwise) {
  const ExecContext ctx = ExecContext::Cpu();
  ShardedFixture a(ctx);
  a.opt->Step(ctx, 0.1);
  std::vector<checkpoint::TensorBlob> blobs;
  a.opt->AppendStateBlobs(blobs);
  std::vector<std::string> names;
  for (const auto& b : blobs) names.push_back(b.name);
  EXPECT_THAT(names, ::testing::ElementsAre("param/w", "param/b", "adam_m/w@1", "adam_v/w@1",
                                            "adam_m/b@0", "adam_v/b@0", "optimizer/step"));
  EXPECT_EQ(blobs[2].shape, std::vector<int64_t>({1}));
  const checkpoint::TensorSet saved = ToTensorSet(blobs);

  ShardedFixture b(ctx);
  ASSERT_TRUE(b.opt->LoadState(saved).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Bits(b.model[i].value), Bits(a.model[i].value)) << i;
    EXPECT_EQ(Bits(b.opt->exp_avg(i)), Bits(a.opt->exp_avg(i))) << i;
    EXPECT_EQ(Bits(b.opt->exp_avg_sq(i)), Bits(a.opt->exp_avg_sq(i))) << i;
  }
  a.opt->Step(ctx, 0.05);
  b.opt->Step(ctx, 0.05);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(Bits(b.model[i].value), Bits(a.model[i].value)) << i;

  // An unsharded optimizer cannot take a sharded checkpoint.
  TinyModel c = MakeModel();
  std::unique_ptr<AdamW> unsharded = MakeOptimizer(ctx, c);
  EXPECT_FALSE(unsharded->LoadState(saved).ok());
}

// ZeRO-Offload: the state moves into buffers of the optimizer's own host
// allocator (masters, moments, gradient staging: 4 x the elements), the
// update runs there, and values, moments and checkpoints are bitwise those
// of the optimizer that was not offloaded; a checkpoint restores into an
// offloaded optimizer (masters refreshed) and training continues identically.
TEST(AdamWOffloadTest, HostStateGivesBitwiseTheSameUpdates) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel plain_model = MakeModel();
  TinyModel host_model = MakeModel();
  std::unique_ptr<AdamW> plain = MakeOptimizer(ctx, plain_model);
  std::unique_ptr<AdamW> host = MakeOptimizer(ctx, host_model);
  ASSERT_TRUE(host->OffloadToHost(ctx).ok());
  ASSERT_TRUE(host->offloaded());
  EXPECT_FALSE(plain->offloaded());
  EXPECT_EQ(host->host_bytes(), 4 * 3 * 4);  // 3 elements: master, m, v, staging.
  EXPECT_EQ(host->host_allocator()->bytes_in_use(), host->host_bytes());
  EXPECT_EQ(plain->host_bytes(), 0);
  EXPECT_FALSE(host->OffloadToHost(ctx).ok());  // Once.
  const std::vector<std::vector<float>> grads = {{0.5f, -1.0f, 0.25f}, {0.1f, 0.2f, -0.5f},
                                                 {-3.0f, 0.7f, 1e-3f}};
  const auto step = [&](int s) {
    for (TinyModel* m : {&plain_model, &host_model}) {
      SetGrads(*m, {grads[s][0], grads[s][1]}, {grads[s][2]});
    }
    plain->Step(ctx, 0.1 / (s + 1), 0.5f);
    host->Step(ctx, 0.1 / (s + 1), 0.5f);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(Bits(host_model[i].value), Bits(plain_model[i].value)) << "step " << s;
      EXPECT_EQ(Bits(host->exp_avg(i)), Bits(plain->exp_avg(i))) << "step " << s;
      EXPECT_EQ(Bits(host->exp_avg_sq(i)), Bits(plain->exp_avg_sq(i))) << "step " << s;
    }
  };
  step(0);
  step(1);
  // The host's checkpoint is the plain one's, byte for byte.
  std::vector<checkpoint::TensorBlob> plain_blobs, host_blobs;
  plain->AppendStateBlobs(plain_blobs);
  host->AppendStateBlobs(host_blobs);
  ASSERT_EQ(plain_blobs.size(), host_blobs.size());
  for (size_t i = 0; i < plain_blobs.size(); ++i) {
    EXPECT_EQ(host_blobs[i].name, plain_blobs[i].name);
    EXPECT_TRUE(std::equal(host_blobs[i].bytes.begin(), host_blobs[i].bytes.end(),
                           plain_blobs[i].bytes.begin(), plain_blobs[i].bytes.end()))
        << plain_blobs[i].name;
  }
  // Restored into a fresh offloaded optimizer, the next step is the same.
  const checkpoint::TensorSet saved = ToTensorSet(plain_blobs);
  TinyModel restored_model = MakeModel();
  std::unique_ptr<AdamW> restored = MakeOptimizer(ctx, restored_model);
  ASSERT_TRUE(restored->OffloadToHost(ctx).ok());
  ASSERT_TRUE(restored->LoadState(saved).ok());
  step(2);
  SetGrads(restored_model, {grads[2][0], grads[2][1]}, {grads[2][2]});
  restored->Step(ctx, 0.1 / 3, 0.5f);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Bits(restored_model[i].value), Bits(plain_model[i].value)) << i;
  }
}

// With ZeRO windows the offloaded state is the windows' and the update
// writes only the owned elements back.
TEST(AdamWOffloadTest, OffloadsTheWindowsOnly) {
  const ExecContext ctx = ExecContext::Cpu();
  ShardedFixture plain(ctx);
  ShardedFixture host(ctx);
  ASSERT_TRUE(host.opt->OffloadToHost(ctx).ok());
  EXPECT_EQ(host.opt->host_bytes(), 4 * 2 * 4);  // Two 1-element windows.
  EXPECT_FALSE(host.opt->ShardState(ctx, {}).ok());  // Shard before offloading.
  plain.opt->Step(ctx, 0.1);
  host.opt->Step(ctx, 0.1);
  EXPECT_EQ(host.model[0].value.ToVector<float>()[0], 1.0f);  // Not owned.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Bits(host.model[i].value), Bits(plain.model[i].value)) << i;
    EXPECT_EQ(Bits(host.opt->exp_avg_sq(i)), Bits(plain.opt->exp_avg_sq(i))) << i;
  }
}

}  // namespace
}  // namespace trident::training

namespace trident::training {
namespace {

// Mixed precision: updates smaller than half a bf16 ulp of the value would
// vanish if applied to the bf16 value itself (1 - 1e-4 rounds back to 1);
// applied to the fp32 master they accumulate, and the rounded value follows.
TEST(AdamWMastersTest, UpdatesBelowABf16UlpAccumulateInTheMaster) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m;
  m.Add("b", {1.0f}, /*decay=*/false);
  AdamWSettings settings = Settings();
  settings.weight_decay = 0;
  absl::StatusOr<std::unique_ptr<AdamW>> opt = AdamW::Create(ctx, m.List(), settings);
  ASSERT_TRUE(opt.ok()) << opt.status();
  ASSERT_TRUE((*opt)->KeepFp32Masters(ctx, DType::kBFloat16).ok());
  EXPECT_EQ(m[0].value.dtype(), DType::kBFloat16);
  EXPECT_EQ(m[0].grad.dtype(), DType::kFloat32);
  EXPECT_EQ((*opt)->master_bytes(), 4);
  for (int step = 0; step < 100; ++step) {
    m[0].grad.CopyFrom(std::vector<float>{1.0f});
    (*opt)->Step(ctx, /*learning_rate=*/1e-4);  // Adam: each step moves ~lr
  }
  // The checkpoint view is the fp32 master: about 1 - 100 x 1e-4.
  std::vector<checkpoint::TensorBlob> blobs;
  (*opt)->AppendStateBlobs(blobs);
  ASSERT_EQ(blobs[0].name, "param/b");
  ASSERT_EQ(blobs[0].dtype, DType::kFloat32);
  float master = 0;
  std::memcpy(&master, blobs[0].bytes.data(), sizeof(master));
  EXPECT_NEAR(master, 0.99f, 1e-4f);
  // The value is the master rounded to bf16 (0.98828125 or 0.9921875), not 1.
  const float value = ToFloat(m[0].value.ToVector<BFloat16>()[0]);
  EXPECT_EQ(value, ToFloat(ToBFloat16(master)));
  EXPECT_LT(value, 1.0f);
  EXPECT_TRUE((*opt)->GradientsFinite(ctx));
  m[0].grad.CopyFrom(std::vector<float>{std::numeric_limits<float>::infinity()});
  EXPECT_FALSE((*opt)->GradientsFinite(ctx));
}

// ZeRO 3 under mixed precision: the window's value given to ShardState is the
// reducer's bf16 value shard; the optimizer keeps an fp32 master of the
// window in its place (checkpointed as "param/<name>@<offset>"), updates it,
// and rounds it into the shard, so sub-ulp updates still accumulate; a
// checkpoint restores master and shard bitwise. A window whose value is not
// of the model dtype is refused.
TEST(AdamWMastersTest, ZeroStage3RoundsTheWindowMastersIntoSixteenBitShards) {
  const ExecContext ctx = ExecContext::Cpu();
  AdamWSettings settings = Settings();
  settings.weight_decay = 0;
  struct Zero3 {
    TinyModel m;
    Tensor shard = Tensor::Empty({1}, DType::kBFloat16);  // The reducer's window.
    Tensor grad = Tensor::Zeros({1}, DType::kFloat32);
    std::unique_ptr<AdamW> opt;
  };
  const auto make = [&](Zero3& z) {
    z.m.Add("b", {5.0f, 1.0f}, /*decay=*/false);
    absl::StatusOr<std::unique_ptr<AdamW>> opt = AdamW::Create(ctx, z.m.List(), settings);
    ASSERT_TRUE(opt.ok()) << opt.status();
    z.opt = *std::move(opt);
    ASSERT_TRUE(z.opt->KeepFp32Masters(ctx, DType::kBFloat16).ok());
    z.shard.CopyFrom(std::vector<BFloat16>{ToBFloat16(1.0f)});  // As ShardParameters does.
    const absl::Status st = z.opt->ShardState(
        ctx, {{.param = &z.m[0], .offset = 1, .length = 1, .grad = z.grad, .value = z.shard}});
    ASSERT_TRUE(st.ok()) << st;
  };
  Zero3 a;
  make(a);
  EXPECT_TRUE(a.opt->values_sharded());
  EXPECT_EQ(a.opt->master_bytes(), 4);  // One fp32 window.
  for (int step = 0; step < 100; ++step) {
    a.grad.CopyFrom(std::vector<float>{1.0f});
    a.opt->Step(ctx, /*learning_rate=*/1e-4);
  }
  std::vector<checkpoint::TensorBlob> blobs;
  a.opt->AppendStateBlobs(blobs);
  ASSERT_EQ(blobs[0].name, "param/b@1");
  ASSERT_EQ(blobs[0].dtype, DType::kFloat32);
  float master = 0;
  std::memcpy(&master, blobs[0].bytes.data(), sizeof(master));
  EXPECT_NEAR(master, 0.99f, 1e-4f);
  const float value = ToFloat(a.shard.ToVector<BFloat16>()[0]);
  EXPECT_EQ(value, ToFloat(ToBFloat16(master)));
  EXPECT_LT(value, 1.0f);

  Zero3 b;
  make(b);
  const absl::Status loaded = b.opt->LoadState(ToTensorSet(blobs));
  ASSERT_TRUE(loaded.ok()) << loaded;
  const auto shard_value = [](const Zero3& z) { return ToFloat(z.shard.ToVector<BFloat16>()[0]); };
  EXPECT_EQ(shard_value(b), shard_value(a));
  a.grad.CopyFrom(std::vector<float>{1.0f});
  b.grad.CopyFrom(std::vector<float>{1.0f});
  a.opt->Step(ctx, 1e-2);
  b.opt->Step(ctx, 1e-2);
  EXPECT_EQ(shard_value(b), shard_value(a));
  EXPECT_NE(shard_value(a), value);  // The step moved it.

  TinyModel m;
  m.Add("b", {5.0f, 1.0f}, /*decay=*/false);
  absl::StatusOr<std::unique_ptr<AdamW>> opt = AdamW::Create(ctx, m.List(), settings);
  ASSERT_TRUE(opt.ok());
  ASSERT_TRUE((*opt)->KeepFp32Masters(ctx, DType::kBFloat16).ok());
  const Tensor grad = Tensor::Zeros({1}, DType::kFloat32);
  EXPECT_THAT((*opt)
                  ->ShardState(ctx, {{.param = &m[0],
                                      .offset = 0,
                                      .length = 1,
                                      .grad = grad,
                                      .value = Tensor::Zeros({1}, DType::kFloat32)}})
                  .message(),
              HasSubstr("holds fp32 values; the model's values are bf16"));
}

TEST(AdamWMastersTest, BadUsesAreRefused) {
  const ExecContext ctx = ExecContext::Cpu();
  TinyModel m = MakeModel();
  absl::StatusOr<std::unique_ptr<AdamW>> opt = AdamW::Create(ctx, m.List(), Settings());
  ASSERT_TRUE(opt.ok());
  EXPECT_THAT((*opt)->KeepFp32Masters(ctx, DType::kFloat32).message(),
              HasSubstr("fp32 is not a 16-bit float"));
  EXPECT_FALSE((*opt)->has_masters());
  ASSERT_TRUE((*opt)->KeepFp32Masters(ctx, DType::kFloat16).ok());
  EXPECT_EQ((*opt)->KeepFp32Masters(ctx, DType::kFloat16).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace trident::training
