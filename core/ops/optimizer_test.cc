#include "core/ops/optimizer.h"

#include <cmath>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

struct State {
  Tensor param, exp_avg, exp_avg_sq;
};

State Start() {
  return {Tensor::FromVector<float>({1.0f, -2.0f}, {2}), Tensor::Zeros({2}, DType::kFloat32),
          Tensor::Zeros({2}, DType::kFloat32)};
}

AdamWOptions Options(int64_t step) {
  AdamWOptions o;
  o.learning_rate = 0.1;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.epsilon = 1e-8;
  o.weight_decay = 0.01;
  o.step = step;
  return o;
}

// Two steps worked by hand (lr 0.1, betas 0.9/0.999, eps 1e-8, wd 0.01) from
// p = (1, -2) with gradients g1 = (0.5, -1) and g2 = (0.1, 0.2):
// step 1: p *= 1 - 0.001 -> (0.999, -1.998); m = 0.1 g1 = (0.05, -0.1);
//   v = 0.001 g1^2 = (2.5e-4, 1e-3); bias corrections 0.1 and 0.001 give
//   step size 1 and denominators sqrt(v / 0.001) = (0.5, 1);
//   p -= m / denom -> (0.899, -1.898).
// step 2: p *= 0.999 -> (0.898101, -1.896102); m = 0.9 m + 0.1 g2 =
//   (0.055, -0.07); v = 0.999 v + 0.001 g2^2 = (2.5975e-4, 1.039e-3);
//   step size 0.1 / 0.19; denominators sqrt(v / 0.001999) = (0.360474, 0.720916);
//   p -> (0.8177969, -1.8449994).
// Without weight decay the same arithmetic gives (0.9, -1.9) then
// (0.8196959, -1.8488974).
TEST(AdamWTest, TwoStepsMatchTheHandComputedExample) {
  ExecContext ctx = ExecContext::Cpu();
  for (WeightDecay decay : {WeightDecay::kApply, WeightDecay::kSkip}) {
    State s = Start();
    AdamWStep(ctx, s.param, Tensor::FromVector<float>({0.5f, -1.0f}, {2}), s.exp_avg, s.exp_avg_sq,
              Options(1), decay);
    std::vector<float> p = s.param.ToVector<float>();
    if (decay == WeightDecay::kApply) {
      EXPECT_NEAR(p[0], 0.899, 1e-6);
      EXPECT_NEAR(p[1], -1.898, 1e-6);
    } else {
      EXPECT_NEAR(p[0], 0.9, 1e-6);
      EXPECT_NEAR(p[1], -1.9, 1e-6);
    }
    EXPECT_NEAR(s.exp_avg.ToVector<float>()[1], -0.1, 1e-7);
    EXPECT_NEAR(s.exp_avg_sq.ToVector<float>()[0], 2.5e-4,
                2.5e-10);  // 1e-6 relative: fp32 rounding.
    AdamWStep(ctx, s.param, Tensor::FromVector<float>({0.1f, 0.2f}, {2}), s.exp_avg, s.exp_avg_sq,
              Options(2), decay);
    p = s.param.ToVector<float>();
    if (decay == WeightDecay::kApply) {
      EXPECT_NEAR(p[0], 0.8177969064, 1e-6);
      EXPECT_NEAR(p[1], -1.8449993940, 1e-6);
    } else {
      EXPECT_NEAR(p[0], 0.8196959064, 1e-6);
      EXPECT_NEAR(p[1], -1.8488973940, 1e-6);
    }
    EXPECT_NEAR(s.exp_avg.ToVector<float>()[0], 0.055, 1e-7);
    EXPECT_NEAR(s.exp_avg_sq.ToVector<float>()[1], 1.039e-3, 1.039e-9);
  }
}

TEST(AdamWTest, GradScaleEqualsScalingTheGradient) {
  ExecContext ctx = ExecContext::Cpu(2);
  const int64_t n = 70001;
  Tensor grad = testing::RandomTensor({n}, 1);
  Tensor param_a = testing::RandomTensor({n}, 2), param_b = Clone(ctx, param_a);
  Tensor m_a = Tensor::Zeros({n}, DType::kFloat32), v_a = Tensor::Zeros({n}, DType::kFloat32);
  Tensor m_b = Tensor::Zeros({n}, DType::kFloat32), v_b = Tensor::Zeros({n}, DType::kFloat32);
  AdamWOptions o = Options(1);
  o.grad_scale = 0.5f;
  AdamWStep(ctx, param_a, grad, m_a, v_a, o, WeightDecay::kApply);
  Tensor halved = Clone(ctx, grad);
  Scale(ctx, halved, 0.5f);
  AdamWStep(ctx, param_b, halved, m_b, v_b, Options(1), WeightDecay::kApply);
  EXPECT_EQ(param_a.ToVector<float>(), param_b.ToVector<float>());
  EXPECT_EQ(v_a.ToVector<float>(), v_b.ToVector<float>());
}

TEST(GradNormTest, GlobalNormAndClipCoefficient) {
  ExecContext ctx = ExecContext::Cpu();
  std::vector<Tensor> grads = {Tensor::FromVector<float>({3.0f, 0.0f}, {2}),
                               Tensor::FromVector<float>({4.0f}, {1}),
                               Tensor::Zeros({0}, DType::kFloat32)};
  const double norm = GlobalL2Norm(ctx, grads);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_NEAR(ClipCoefficient(norm, 1.0f), 1.0 / (5.0 + 1e-6), 1e-7);
  EXPECT_EQ(ClipCoefficient(norm, 10.0f), 1.0f);
  // Clipping in place brings the norm to max_norm.
  for (const Tensor& g : grads) Scale(ctx, g, ClipCoefficient(norm, 1.0f));
  EXPECT_NEAR(GlobalL2Norm(ctx, grads), 1.0, 1e-6);
}

TEST(AdamWDeathTest, BadArgumentsAbort) {
  ExecContext ctx = ExecContext::Cpu();
  State s = Start();
  EXPECT_DEATH(AdamWStep(ctx, s.param, Tensor::Zeros({3}, DType::kFloat32), s.exp_avg, s.exp_avg_sq,
                         Options(1), WeightDecay::kApply),
               "grad is fp32\\[3\\] cpu but must have the shape of param \\[2\\]");
  EXPECT_DEATH(
      AdamWStep(ctx, s.param, s.param, s.exp_avg, s.exp_avg_sq, Options(0), WeightDecay::kApply),
      "step counts from 1");
}

}  // namespace
}  // namespace trident::ops
