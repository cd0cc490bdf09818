#include "core/ops/linear.h"

#include <cmath>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/gelu.h"
#include "core/ops/gemm.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;

struct Shape {
  int64_t m, k, n;
};

// Small, and big enough to be split over threads by rows (m >= n) and by
// columns (n > m), with ragged blocks.
constexpr Shape kShapes[] = {{5, 3, 7}, {300, 128, 96}, {72, 128, 520}, {1024, 128, 512}};

Tensor Copy(const Tensor& t) {
  Tensor c = Tensor::Empty(t.shape(), DType::kFloat32);
  c.CopyFrom(t.ToVector<float>());
  return c;
}

// Fused forward against the unfused composition it replaces: bit for bit.
TEST(LinearTest, ForwardEqualsBroadcastGemmGeluBitwise) {
  for (const Shape& s : kShapes) {
    const Tensor x = RandomTensor({s.m, s.k}, 1), w = RandomTensor({s.k, s.n}, 2, 0.2f);
    const Tensor b = RandomTensor({s.n}, 3);
    for (int threads : {1, 2, 3}) {
      const ExecContext ctx = ExecContext::Cpu(threads);
      Tensor want_pre = Tensor::Empty({s.m, s.n}, DType::kFloat32);
      BroadcastRows(ctx, b, want_pre);
      Gemm(ctx, x, Trans::kNo, w, Trans::kNo, want_pre, 1.0f, 1.0f);
      Tensor want_act = Tensor::Empty({s.m, s.n}, DType::kFloat32);
      GeluForward(ctx, want_pre, want_act);

      Tensor y = Tensor::Empty({s.m, s.n}, DType::kFloat32);
      LinearForward(ctx, x, w, b, LinearEpilogue::kBias, y);
      EXPECT_EQ(y.ToVector<float>(), want_pre.ToVector<float>())
          << s.m << "x" << s.k << "x" << s.n << " threads " << threads;
      Tensor pre = Tensor::Empty({s.m, s.n}, DType::kFloat32);
      LinearForward(ctx, x, w, b, LinearEpilogue::kBiasGelu, y, pre);
      EXPECT_EQ(pre.ToVector<float>(), want_pre.ToVector<float>());
      EXPECT_EQ(y.ToVector<float>(), want_act.ToVector<float>());
    }
  }
}

// And against a double-precision x W + b (fp32 GEMM: relative 1e-5 of the
// largest element; K = 128 products of O(1) values).
TEST(LinearTest, ForwardMatchesDoubleReference) {
  const Shape s{37, 128, 45};
  const Tensor x = RandomTensor({s.m, s.k}, 4), w = RandomTensor({s.k, s.n}, 5);
  const Tensor b = RandomTensor({s.n}, 6);
  const std::vector<float> xv = x.ToVector<float>(), wv = w.ToVector<float>(),
                           bv = b.ToVector<float>();
  std::vector<double> want(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.n; ++j) {
      double acc = bv[j];
      for (int64_t l = 0; l < s.k; ++l) acc += double{xv[i * s.k + l]} * wv[l * s.n + j];
      want[i * s.n + j] = acc;
    }
  }
  const ExecContext ctx = ExecContext::Cpu(2);
  Tensor y = Tensor::Empty({s.m, s.n}, DType::kFloat32);
  LinearForward(ctx, x, w, b, LinearEpilogue::kBias, y);
  EXPECT_TRUE(NearRelative(y.ToVector<float>(), want, 1e-5));
}

TEST(LinearTest, NanInTheInputReachesItsRow) {
  const ExecContext ctx = ExecContext::Cpu(2);
  Tensor x = RandomTensor({64, 128}, 7);
  std::vector<float> v = x.ToVector<float>();
  v[40 * 128 + 3] = NAN;
  x.CopyFrom(v);
  const Tensor w = RandomTensor({128, 256}, 8), b = RandomTensor({256}, 9);
  Tensor y = Tensor::Empty({64, 256}, DType::kFloat32);
  Tensor pre = Tensor::Empty({64, 256}, DType::kFloat32);
  LinearForward(ctx, x, w, b, LinearEpilogue::kBiasGelu, y, pre);
  const std::vector<float> out = y.ToVector<float>();
  EXPECT_TRUE(std::isnan(out[40 * 256 + 17]));
  EXPECT_FALSE(std::isnan(out[39 * 256 + 17]));
}

// Accumulating weight and bias gradients against Gemm(beta = 1) + BiasGrad.
TEST(LinearTest, WeightGradEqualsGemmPlusBiasGradBitwise) {
  for (const Shape& s : kShapes) {
    // x [m, k], dy [m, n]: dW [k, n].
    const Tensor x = RandomTensor({s.m, s.k}, 10), dy = RandomTensor({s.m, s.n}, 11);
    const Tensor dw0 = RandomTensor({s.k, s.n}, 12), db0 = RandomTensor({s.n}, 13);
    for (int threads : {1, 2, 3}) {
      const ExecContext ctx = ExecContext::Cpu(threads);
      Tensor want_dw = Copy(dw0), want_db = Copy(db0);
      Gemm(ctx, x, Trans::kYes, dy, Trans::kNo, want_dw, 1.0f, 1.0f);
      BiasGrad(ctx, dy, want_db);
      Tensor dw = Copy(dw0), db = Copy(db0);
      LinearWeightGrad(ctx, x, dy, dw, db);
      EXPECT_EQ(dw.ToVector<float>(), want_dw.ToVector<float>())
          << s.m << "x" << s.k << "x" << s.n << " threads " << threads;
      EXPECT_EQ(db.ToVector<float>(), want_db.ToVector<float>())
          << s.m << "x" << s.k << "x" << s.n << " threads " << threads;
    }
  }
}

TEST(LinearDeathTest, BadShapesAbort) {
  const ExecContext ctx = ExecContext::Cpu();
  const Tensor x = Tensor::Empty({4, 3}, DType::kFloat32);
  const Tensor w = Tensor::Empty({3, 5}, DType::kFloat32);
  const Tensor b = Tensor::Empty({5}, DType::kFloat32);
  const Tensor y = Tensor::Empty({4, 5}, DType::kFloat32);
  EXPECT_DEATH(LinearForward(ctx, x, Tensor::Empty({2, 5}, DType::kFloat32), b,
                             LinearEpilogue::kBias, y),
               "weight is fp32\\[2, 5\\] cpu but must have shape \\[3, 5\\]");
  EXPECT_DEATH(LinearForward(ctx, x, w, Tensor::Empty({4}, DType::kFloat32),
                             LinearEpilogue::kBias, y),
               "bias is fp32\\[4\\]");
  EXPECT_DEATH(LinearForward(ctx, x, w, b, LinearEpilogue::kBiasGelu, y, y),
               "pre and y must be different buffers");
  EXPECT_DEATH(LinearWeightGrad(ctx, x, y, Tensor::Empty({3, 4}, DType::kFloat32), b),
               "dweight is fp32\\[3, 4\\]");
}

}  // namespace
}  // namespace trident::ops
