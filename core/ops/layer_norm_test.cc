#include "core/ops/layer_norm.h"

#include <cmath>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::NumericGradient;
using testing::RandomTensor;
using testing::ToDouble;

constexpr double kEps = 1e-5;

// Reference LayerNorm in double: y, and per-row mean and rstd.
struct RefLn {
  std::vector<double> y, mean, rstd;
};

RefLn RefLayerNorm(const std::vector<double>& x, const std::vector<double>& gamma,
                   const std::vector<double>& beta, int64_t rows, int64_t cols) {
  RefLn out{std::vector<double>(rows * cols), std::vector<double>(rows), std::vector<double>(rows)};
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0.0;
    for (int64_t c = 0; c < cols; ++c) m += x[r * cols + c];
    m /= cols;
    double var = 0.0;
    for (int64_t c = 0; c < cols; ++c) var += (x[r * cols + c] - m) * (x[r * cols + c] - m);
    var /= cols;
    const double s = 1.0 / std::sqrt(var + kEps);
    for (int64_t c = 0; c < cols; ++c) {
      out.y[r * cols + c] = (x[r * cols + c] - m) * s * gamma[c] + beta[c];
    }
    out.mean[r] = m;
    out.rstd[r] = s;
  }
  return out;
}

struct LnInputs {
  int64_t rows, cols;
  Tensor x, gamma, beta;
};

LnInputs MakeInputs(int64_t batch, int64_t seq, int64_t cols, uint32_t seed) {
  LnInputs in{batch * seq, cols, RandomTensor({batch, seq, cols}, seed, 2.0f),
              RandomTensor({cols}, seed + 1), RandomTensor({cols}, seed + 2)};
  return in;
}

TEST(LayerNormTest, ForwardMatchesReferenceAndSavesStats) {
  for (int64_t cols : {5, 64, 771}) {
    LnInputs in = MakeInputs(3, 7, cols, 1);
    ExecContext ctx = ExecContext::Cpu(2);
    Tensor y = Tensor::Empty({3, 7, cols}, DType::kFloat32);
    Tensor mean = Tensor::Empty({3, 7}, DType::kFloat32),
           rstd = Tensor::Empty({3, 7}, DType::kFloat32);
    LayerNormForward(ctx, in.x, in.gamma, in.beta, kEps, y, mean, rstd);
    const RefLn ref =
        RefLayerNorm(ToDouble(in.x.ToVector<float>()), ToDouble(in.gamma.ToVector<float>()),
                     ToDouble(in.beta.ToVector<float>()), in.rows, cols);
    EXPECT_TRUE(NearRelative(y.ToVector<float>(), ref.y, 1e-5)) << cols;
    EXPECT_TRUE(NearRelative(mean.ToVector<float>(), ref.mean, 1e-5)) << cols;
    EXPECT_TRUE(NearRelative(rstd.ToVector<float>(), ref.rstd, 1e-5)) << cols;
    // In place gives the same values.
    LayerNormForward(ctx, in.x, in.gamma, in.beta, kEps, in.x, mean, rstd);
    EXPECT_EQ(in.x.ToVector<float>(), y.ToVector<float>());
  }
}

// L = sum(y * w): the split backward against central differences of the
// double-precision reference. dgamma/dbeta accumulate onto existing values.
TEST(LayerNormTest, BackwardInputAndWeightsMatchFiniteDifferences) {
  const int64_t batch = 2, seq = 3, cols = 7, rows = batch * seq;
  LnInputs in = MakeInputs(batch, seq, cols, 10);
  Tensor w = RandomTensor({batch, seq, cols}, 20);
  const std::vector<double> xd = ToDouble(in.x.ToVector<float>());
  const std::vector<double> gd = ToDouble(in.gamma.ToVector<float>());
  const std::vector<double> bd = ToDouble(in.beta.ToVector<float>());
  const std::vector<double> wd = ToDouble(w.ToVector<float>());

  ExecContext ctx = ExecContext::Cpu();
  Tensor y = Tensor::Empty({batch, seq, cols}, DType::kFloat32);
  Tensor mean = Tensor::Empty({rows}, DType::kFloat32),
         rstd = Tensor::Empty({rows}, DType::kFloat32);
  LayerNormForward(ctx, in.x, in.gamma, in.beta, kEps, y, mean, rstd);
  Tensor dx = Tensor::Empty({batch, seq, cols}, DType::kFloat32);
  LayerNormBackwardInput(ctx, in.x, in.gamma, mean, rstd, w, dx);
  Tensor dgamma = Tensor::FromVector(std::vector<float>(cols, 0.5f), {cols});
  Tensor dbeta = Tensor::FromVector(std::vector<float>(cols, -0.5f), {cols});
  LayerNormBackwardWeights(ctx, in.x, mean, rstd, w, dgamma, dbeta);

  auto loss = [&](const std::vector<double>& x, const std::vector<double>& g,
                  const std::vector<double>& b) {
    return testing::Dot(RefLayerNorm(x, g, b, rows, cols).y, wd);
  };
  EXPECT_TRUE(NearRelative(
      dx.ToVector<float>(),
      NumericGradient([&](const std::vector<double>& v) { return loss(v, gd, bd); }, xd), 1e-5));
  std::vector<double> dg =
      NumericGradient([&](const std::vector<double>& v) { return loss(xd, v, bd); }, gd);
  std::vector<double> db =
      NumericGradient([&](const std::vector<double>& v) { return loss(xd, gd, v); }, bd);
  for (double& v : dg) v += 0.5;
  for (double& v : db) v -= 0.5;
  EXPECT_TRUE(NearRelative(dgamma.ToVector<float>(), dg, 1e-5));
  EXPECT_TRUE(NearRelative(dbeta.ToVector<float>(), db, 1e-5));

  // dx in place over dy.
  Tensor dy = Clone(ctx, w);
  LayerNormBackwardInput(ctx, in.x, in.gamma, mean, rstd, dy, dy);
  EXPECT_EQ(dy.ToVector<float>(), dx.ToVector<float>());
}

TEST(LayerNormTest, ResultsAreBitwiseTheSameForAnyThreadCount) {
  LnInputs in = MakeInputs(4, 64, 300, 30);
  Tensor dy = RandomTensor({4, 64, 300}, 31);
  std::vector<float> first_y, first_dx, first_dg;
  for (int threads : {1, 2, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Tensor y = Tensor::Empty({4, 64, 300}, DType::kFloat32),
           dx = Tensor::Empty({4, 64, 300}, DType::kFloat32);
    Tensor mean = Tensor::Empty({256}, DType::kFloat32),
           rstd = Tensor::Empty({256}, DType::kFloat32);
    Tensor dg = Tensor::Zeros({300}, DType::kFloat32), db = Tensor::Zeros({300}, DType::kFloat32);
    LayerNormForward(ctx, in.x, in.gamma, in.beta, kEps, y, mean, rstd);
    LayerNormBackwardInput(ctx, in.x, in.gamma, mean, rstd, dy, dx);
    LayerNormBackwardWeights(ctx, in.x, mean, rstd, dy, dg, db);
    if (threads == 1) {
      first_y = y.ToVector<float>();
      first_dx = dx.ToVector<float>();
      first_dg = dg.ToVector<float>();
    } else {
      EXPECT_EQ(y.ToVector<float>(), first_y);
      EXPECT_EQ(dx.ToVector<float>(), first_dx);
      EXPECT_EQ(dg.ToVector<float>(), first_dg);
    }
  }
}

// The residual-fused forms against the unfused Add + LayerNorm they replace:
// the same arithmetic, so bit for bit (in place too), for any thread count.
TEST(LayerNormTest, AddLayerNormEqualsAddThenLayerNormBitwise) {
  const int64_t rows = 300, cols = 136;  // Several row chunks; a lane tail.
  const Tensor a = RandomTensor({rows, cols}, 21, 2.0f), b = RandomTensor({rows, cols}, 22);
  const Tensor gamma = RandomTensor({cols}, 23), beta = RandomTensor({cols}, 24);
  const Tensor dy = RandomTensor({rows, cols}, 25), d_res = RandomTensor({rows, cols}, 26);
  for (int threads : {1, 3}) {
    const ExecContext ctx = ExecContext::Cpu(threads);
    auto empty = [](std::initializer_list<int64_t> shape) {
      return Tensor::Empty(shape, DType::kFloat32);
    };
    Tensor want_sum = empty({rows, cols}), want_y = empty({rows, cols});
    Tensor want_mean = empty({rows}), want_rstd = empty({rows});
    Add(ctx, a, b, want_sum);
    LayerNormForward(ctx, want_sum, gamma, beta, kLayerNormEpsilon, want_y, want_mean, want_rstd);
    Tensor want_dx = empty({rows, cols});
    LayerNormBackwardInput(ctx, want_sum, gamma, want_mean, want_rstd, dy, want_dx);
    Add(ctx, want_dx, d_res, want_dx);

    Tensor sum = empty({rows, cols}), y = empty({rows, cols});
    Tensor mean = empty({rows}), rstd = empty({rows});
    AddLayerNormForward(ctx, a, b, gamma, beta, kLayerNormEpsilon, sum, y, mean, rstd);
    EXPECT_EQ(sum.ToVector<float>(), want_sum.ToVector<float>()) << threads;
    EXPECT_EQ(y.ToVector<float>(), want_y.ToVector<float>()) << threads;
    EXPECT_EQ(mean.ToVector<float>(), want_mean.ToVector<float>());
    EXPECT_EQ(rstd.ToVector<float>(), want_rstd.ToVector<float>());
    // In place: sum written over a.
    Tensor a_copy = empty({rows, cols});
    a_copy.CopyFrom(a.ToVector<float>());
    AddLayerNormForward(ctx, a_copy, b, gamma, beta, kLayerNormEpsilon, a_copy, y, mean, rstd);
    EXPECT_EQ(a_copy.ToVector<float>(), want_sum.ToVector<float>());
    EXPECT_EQ(y.ToVector<float>(), want_y.ToVector<float>());

    Tensor dx = empty({rows, cols});
    AddLayerNormBackwardInput(ctx, sum, gamma, mean, rstd, dy, d_res, dx);
    EXPECT_EQ(dx.ToVector<float>(), want_dx.ToVector<float>()) << threads;
    // In place over the residual gradient.
    Tensor in_place = empty({rows, cols});
    in_place.CopyFrom(d_res.ToVector<float>());
    AddLayerNormBackwardInput(ctx, sum, gamma, mean, rstd, dy, in_place, in_place);
    EXPECT_EQ(in_place.ToVector<float>(), want_dx.ToVector<float>());
  }
}

// And the forward against the double reference of LayerNorm(a + b).
TEST(LayerNormTest, AddLayerNormMatchesReference) {
  const int64_t rows = 7, cols = 37;
  const Tensor a = RandomTensor({rows, cols}, 31), b = RandomTensor({rows, cols}, 32);
  const Tensor gamma = RandomTensor({cols}, 33), beta = RandomTensor({cols}, 34);
  std::vector<double> sum = ToDouble(a.ToVector<float>());
  const std::vector<double> bd = ToDouble(b.ToVector<float>());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += bd[i];
  const RefLn ref = RefLayerNorm(sum, ToDouble(gamma.ToVector<float>()),
                                 ToDouble(beta.ToVector<float>()), rows, cols);
  const ExecContext ctx = ExecContext::Cpu();
  Tensor s = Tensor::Empty({rows, cols}, DType::kFloat32);
  Tensor y = Tensor::Empty({rows, cols}, DType::kFloat32);
  Tensor mean = Tensor::Empty({rows}, DType::kFloat32), rstd = Tensor::Empty({rows}, DType::kFloat32);
  AddLayerNormForward(ctx, a, b, gamma, beta, kLayerNormEpsilon, s, y, mean, rstd);
  EXPECT_TRUE(NearRelative(y.ToVector<float>(), ref.y, 1e-5));
  EXPECT_TRUE(NearRelative(s.ToVector<float>(), sum, 1e-7));
}

TEST(LayerNormDeathTest, FusedFormsRefuseBadArguments) {
  const ExecContext ctx = ExecContext::Cpu();
  const Tensor x = Tensor::Empty({4, 8}, DType::kFloat32), g = Tensor::Empty({8}, DType::kFloat32);
  const Tensor stats = Tensor::Empty({4}, DType::kFloat32);
  EXPECT_DEATH(AddLayerNormForward(ctx, x, Tensor::Empty({4, 9}, DType::kFloat32), g, g, 1e-5f,
                                   x, Tensor::Empty({4, 8}, DType::kFloat32), stats, stats),
               "b is fp32\\[4, 9\\]");
  EXPECT_DEATH(AddLayerNormForward(ctx, x, x, g, g, 1e-5f, x, x, stats, stats),
               "y and sum must be different buffers");
  EXPECT_DEATH(AddLayerNormBackwardInput(ctx, x, g, stats, stats, x,
                                         Tensor::Empty({4, 7}, DType::kFloat32), x),
               "d_residual is fp32\\[4, 7\\]");
}

TEST(LayerNormDeathTest, BadShapesAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor x = Tensor::Empty({4, 8}, DType::kFloat32), g = Tensor::Empty({8}, DType::kFloat32);
  Tensor stats = Tensor::Empty({4}, DType::kFloat32);
  EXPECT_DEATH(
      LayerNormForward(ctx, x, Tensor::Empty({7}, DType::kFloat32), g, kEps, x, stats, stats),
      "gamma is fp32\\[7\\] cpu but must have shape \\[8\\]");
  EXPECT_DEATH(LayerNormForward(ctx, x, g, g, kEps, x, Tensor::Empty({3}, DType::kFloat32), stats),
               "mean is fp32\\[3\\] cpu but must have 4 elements");
}

}  // namespace
}  // namespace trident::ops
