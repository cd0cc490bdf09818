#include "core/ops/gemm.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;
using testing::ToDouble;

// Reference: C = alpha op(A) op(B) + beta C in double, for row-major dense
// matrices given with their stored shapes.
std::vector<double> RefGemm(const std::vector<double>& a, int64_t a_rows, int64_t a_cols, Trans ta,
                            const std::vector<double>& b, int64_t b_rows, int64_t b_cols, Trans tb,
                            std::vector<double> c, double alpha, double beta) {
  const int64_t m = ta == Trans::kNo ? a_rows : a_cols;
  const int64_t k = ta == Trans::kNo ? a_cols : a_rows;
  const int64_t n = tb == Trans::kNo ? b_cols : b_rows;
  auto at = [&](int64_t i, int64_t p) {
    return ta == Trans::kNo ? a[i * a_cols + p] : a[p * a_cols + i];
  };
  auto bt = [&](int64_t p, int64_t j) {
    return tb == Trans::kNo ? b[p * b_cols + j] : b[j * b_cols + p];
  };
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t p = 0; p < k; ++p) s += at(i, p) * bt(p, j);
      c[i * n + j] = alpha * s + (beta == 0.0 ? 0.0 : beta * c[i * n + j]);
    }
  }
  return c;
}

struct GemmCase {
  Trans ta, tb;
};

class GemmTransposeTest : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmTransposeTest, MatchesReferenceWithAlphaBetaOnSeveralThreadCounts) {
  const auto [ta, tb] = GetParam();
  const int64_t m = 67, n = 45, k = 130;  // Odd sizes: ragged blocks.
  const Shape a_shape = ta == Trans::kNo ? Shape{m, k} : Shape{k, m};
  const Shape b_shape = tb == Trans::kNo ? Shape{k, n} : Shape{n, k};
  Tensor a = RandomTensor(a_shape, 1), b = RandomTensor(b_shape, 2);
  Tensor c0 = RandomTensor({m, n}, 3);
  for (int threads : {1, 2, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Tensor c = Clone(ctx, c0);
    Gemm(ctx, a, ta, b, tb, c, 0.5f, 2.0f);
    EXPECT_TRUE(NearRelative(c.ToVector<float>(),
                             RefGemm(ToDouble(a.ToVector<float>()), a_shape[0], a_shape[1], ta,
                                     ToDouble(b.ToVector<float>()), b_shape[0], b_shape[1], tb,
                                     ToDouble(c0.ToVector<float>()), 0.5, 2.0),
                             1e-5))
        << "threads " << threads;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTransposes, GemmTransposeTest,
                         ::testing::Values(GemmCase{Trans::kNo, Trans::kNo},
                                           GemmCase{Trans::kNo, Trans::kYes},
                                           GemmCase{Trans::kYes, Trans::kNo},
                                           GemmCase{Trans::kYes, Trans::kYes}));

TEST(GemmTest, LargeProductSplitOverThreadsMatchesReference) {
  // Big enough to be split by rows (m >= n) and by columns (n > m).
  for (auto [m, n] : {std::pair<int64_t, int64_t>{256, 96}, {96, 256}}) {
    const int64_t k = 128;
    Tensor a = RandomTensor({m, k}, 4), b = RandomTensor({k, n}, 5);
    ExecContext ctx = ExecContext::Cpu(4);
    Tensor c = Tensor::Empty({m, n}, DType::kFloat32);
    Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
    EXPECT_TRUE(NearRelative(
        c.ToVector<float>(),
        RefGemm(ToDouble(a.ToVector<float>()), m, k, Trans::kNo, ToDouble(b.ToVector<float>()), k,
                n, Trans::kNo, std::vector<double>(m * n), 1.0, 0.0),
        1e-5));
  }
}

TEST(GemmTest, BetaZeroIgnoresGarbageAndBetaOneAccumulates) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor a = RandomTensor({5, 4}, 6), b = RandomTensor({4, 3}, 7);
  Tensor c = Tensor::Empty({5, 3}, DType::kFloat32);
  Fill(ctx, c, std::numeric_limits<float>::quiet_NaN());
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
  const std::vector<double> ab =
      RefGemm(ToDouble(a.ToVector<float>()), 5, 4, Trans::kNo, ToDouble(b.ToVector<float>()), 4, 3,
              Trans::kNo, std::vector<double>(15), 1.0, 0.0);
  EXPECT_TRUE(NearRelative(c.ToVector<float>(), ab, 1e-6));
  // Gradient accumulation: a second product adds on top.
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c, 1.0f, 1.0f);
  std::vector<double> twice = ab;
  for (double& v : twice) v *= 2.0;
  EXPECT_TRUE(NearRelative(c.ToVector<float>(), twice, 1e-6));
}

TEST(GemmTest, EmptyInnerDimensionScalesOrZeroesC) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor a = Tensor::Empty({3, 0}, DType::kFloat32), b = Tensor::Empty({0, 2}, DType::kFloat32);
  Tensor c = Tensor::FromVector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c, 1.0f, 0.5f);
  EXPECT_EQ(c.ToVector<float>(), (std::vector<float>{0.5, 1, 1.5, 2, 2.5, 3}));
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
  EXPECT_EQ(c.ToVector<float>(), std::vector<float>(6, 0.0f));
}

TEST(GemmTest, RowStridedViewsAreUsedInPlace) {
  // Q of one head inside a fused [T, 3 * H * D] activation times a column window
  // of a weight, written into a column window of a wider output.
  ExecContext ctx = ExecContext::Cpu();
  Tensor qkv = RandomTensor({6, 24}, 8);
  Tensor q_head = qkv.Slice(1, 4, 4);  // [6, 4], row stride 24.
  Tensor w = RandomTensor({4, 10}, 9);
  Tensor w_window = w.Slice(1, 3, 5);  // [4, 5], row stride 10.
  Tensor out = Tensor::Zeros({6, 8}, DType::kFloat32);
  Tensor out_window = out.Slice(1, 2, 5);
  Gemm(ctx, q_head, Trans::kNo, w_window, Trans::kNo, out_window);
  const std::vector<double> expected = RefGemm(ToDouble(q_head.ToVector<float>()), 6, 4, Trans::kNo,
                                               ToDouble(w_window.ToVector<float>()), 4, 5,
                                               Trans::kNo, std::vector<double>(30), 1.0, 0.0);
  EXPECT_TRUE(NearRelative(out_window.ToVector<float>(), expected, 1e-6));
  // Columns outside the window are untouched.
  std::vector<float> all = out.ToVector<float>();
  for (int r = 0; r < 6; ++r) {
    EXPECT_EQ(all[r * 8 + 0], 0.0f);
    EXPECT_EQ(all[r * 8 + 1], 0.0f);
    EXPECT_EQ(all[r * 8 + 7], 0.0f);
  }
}

TEST(BatchedGemmTest, StridedBatchesOverHeadsMatchPerEntryGemm) {
  // Scores of every head: S[h] = Q[h] K[h]^T with Q, K heads inside [T, H * D].
  const int64_t t = 9, h = 3, d = 4;
  Tensor q = RandomTensor({t, h * d}, 10), k = RandomTensor({t, h * d}, 11);
  // [H, T, D] views: batch stride D, row stride H * D.
  Tensor qh = q.Reshape({t, h, d}).Transpose(0, 1);
  Tensor kh = k.Reshape({t, h, d}).Transpose(0, 1);
  Tensor s = Tensor::Empty({h, t, t}, DType::kFloat32);
  for (int threads : {1, 2, 4}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    BatchedGemm(ctx, qh, Trans::kNo, kh, Trans::kYes, s, 0.5f, 0.0f);
    for (int64_t head = 0; head < h; ++head) {
      EXPECT_TRUE(NearRelative(s.Select(0, head).ToVector<float>(),
                               RefGemm(ToDouble(qh.Select(0, head).ToVector<float>()), t, d,
                                       Trans::kNo, ToDouble(kh.Select(0, head).ToVector<float>()),
                                       t, d, Trans::kYes, std::vector<double>(t * t), 0.5, 0.0),
                               1e-6))
          << "head " << head << " threads " << threads;
    }
  }
}

// Linear layer y = x W: the gradients Gemm computes (dx = dy W^T, dW = x^T dy)
// match central differences of L = sum(y * r).
TEST(GemmTest, LinearLayerGradientsMatchFiniteDifferences) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t n = 5, in = 4, out = 3;
  Tensor x = RandomTensor({n, in}, 12), w = RandomTensor({in, out}, 13);
  Tensor r = RandomTensor({n, out}, 14);
  const std::vector<double> xd = ToDouble(x.ToVector<float>()), wd = ToDouble(w.ToVector<float>());
  const std::vector<double> rd = ToDouble(r.ToVector<float>());
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& wv) {
    return testing::Dot(
        RefGemm(xv, n, in, Trans::kNo, wv, in, out, Trans::kNo, std::vector<double>(n * out), 1, 0),
        rd);
  };
  Tensor dx = Tensor::Empty({n, in}, DType::kFloat32);
  Gemm(ctx, r, Trans::kNo, w, Trans::kYes, dx);
  Tensor dw = Tensor::Zeros({in, out}, DType::kFloat32);
  Gemm(ctx, x, Trans::kYes, r, Trans::kNo, dw, 1.0f, 1.0f);
  EXPECT_TRUE(NearRelative(
      dx.ToVector<float>(),
      testing::NumericGradient([&](const std::vector<double>& v) { return loss(v, wd); }, xd),
      1e-6));
  EXPECT_TRUE(NearRelative(
      dw.ToVector<float>(),
      testing::NumericGradient([&](const std::vector<double>& v) { return loss(xd, v); }, wd),
      1e-6));
}

TEST(MatmulTest, AllocatesFromTheContextAllocator) {
  auto allocator = CpuAllocator::Create("matmul");
  ExecContext ctx = ExecContext::Cpu().WithAllocator(allocator);
  Tensor a = Tensor::FromVector<float>({1, 2, 3, 4}, {2, 2});
  Tensor c = Matmul(ctx, a, Trans::kYes, a, Trans::kNo);
  EXPECT_EQ(c.ToVector<float>(), (std::vector<float>{10, 14, 14, 20}));
  EXPECT_EQ(allocator->bytes_in_use(), 16);
}

TEST(GemmDeathTest, BadArgumentsAbortWithClearMessages) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor a = Tensor::Empty({4, 3}, DType::kFloat32), b = Tensor::Empty({4, 5}, DType::kFloat32);
  Tensor c = Tensor::Empty({4, 5}, DType::kFloat32);
  EXPECT_DEATH(Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c), "need op\\(a\\) \\[M, K\\]");
  EXPECT_DEATH(Gemm(ctx, a.Transpose(0, 1), Trans::kNo, b, Trans::kNo, c),
               "needs a unit column stride");
  EXPECT_DEATH(Gemm(ctx, a, Trans::kNo, b, Trans::kNo, Tensor()), "c is undefined");
}

}  // namespace
}  // namespace trident::ops
