#include "core/ops/elementwise.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/reduction.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;
using testing::ToDouble;

TEST(FillTest, FillsEveryElementOnAnyThreadCount) {
  for (int threads : {1, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Tensor x = Tensor::Empty({300, 301}, DType::kFloat32);
    Fill(ctx, x, 0.25f);
    for (float v : x.ToVector<float>()) ASSERT_EQ(v, 0.25f);
  }
}

TEST(CopyTest, ContiguousStridedAndIntoSlices) {
  ExecContext ctx = ExecContext::Cpu(2);
  Tensor src = RandomTensor({4, 5, 6}, 1);
  Tensor dst = Tensor::Empty({4, 5, 6}, DType::kFloat32);
  Copy(ctx, src, dst);
  EXPECT_EQ(dst.ToVector<float>(), src.ToVector<float>());

  // A transposed (strided) source made contiguous.
  Tensor t = Contiguous(ctx, src.Transpose(0, 2));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.shape(), (Shape{6, 5, 4}));
  EXPECT_EQ(t.ToVector<float>(), src.Transpose(0, 2).ToVector<float>());

  // Writing into a column window of a bigger tensor (a strided destination).
  Tensor big = Tensor::Zeros({4, 10}, DType::kFloat32);
  Tensor piece = RandomTensor({4, 3}, 2);
  Copy(ctx, piece, big.Slice(1, 5, 3));
  std::vector<float> all = big.ToVector<float>(), p = piece.ToVector<float>();
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 10; ++c) {
      ASSERT_EQ(all[r * 10 + c], (c >= 5 && c < 8) ? p[r * 3 + c - 5] : 0.0f);
    }
  }
  // int32 and strided-to-strided.
  Tensor ids = Tensor::FromVector<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor ids_t = Tensor::Zeros({3, 2}, DType::kInt32);
  Copy(ctx, ids.Transpose(0, 1), ids_t);
  EXPECT_EQ(ids_t.ToVector<int32_t>(), (std::vector<int32_t>{1, 4, 2, 5, 3, 6}));
}

TEST(CopyTest, ConvertsBetweenFloatDtypesWithRoundToNearestEven) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor f = Tensor::FromVector<float>({1.0f, 1.00390625f, -2.5f, 65504.0f}, {4});
  Tensor bf = Tensor::Empty({4}, DType::kBFloat16);
  Copy(ctx, f, bf);
  Tensor back = Tensor::Empty({4}, DType::kFloat32);
  Copy(ctx, bf, back);
  // 1 + 2^-8 is a tie between bf16 neighbours 1 and 1 + 2^-7: rounds to even (1).
  EXPECT_EQ(back.ToVector<float>(), (std::vector<float>{1.0f, 1.0f, -2.5f, 65536.0f}));
  Tensor h = Tensor::Empty({4}, DType::kFloat16);
  Copy(ctx, f, h);
  Copy(ctx, h, back);
  EXPECT_EQ(back.ToVector<float>(), (std::vector<float>{1.0f, 1.00390625f, -2.5f, 65504.0f}));
}

TEST(CloneTest, AlwaysCopies) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor x = RandomTensor({3, 3}, 3);
  Tensor y = Clone(ctx, x);
  EXPECT_FALSE(y.SharesStorageWith(x));
  EXPECT_EQ(y.ToVector<float>(), x.ToVector<float>());
  EXPECT_TRUE(Contiguous(ctx, x).SharesStorageWith(x));
}

TEST(ArithmeticTest, AddAxpyScaleMatchReference) {
  ExecContext ctx = ExecContext::Cpu(2);
  const int64_t n = 100003;
  Tensor a = RandomTensor({n}, 4), b = RandomTensor({n}, 5);
  const std::vector<float> av = a.ToVector<float>(), bv = b.ToVector<float>();
  Tensor out = Tensor::Empty({n}, DType::kFloat32);
  Add(ctx, a, b, out);
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i) expected[i] = static_cast<double>(av[i]) + bv[i];
  EXPECT_TRUE(NearRelative(out.ToVector<float>(), expected, 1e-7));

  Add(ctx, a, b, a);  // In place (the residual add).
  EXPECT_EQ(a.ToVector<float>(), out.ToVector<float>());

  Axpy(ctx, -0.5f, b, out);  // out = a + b - 0.5 b
  for (int64_t i = 0; i < n; ++i) expected[i] = static_cast<double>(av[i]) + 0.5 * bv[i];
  EXPECT_TRUE(NearRelative(out.ToVector<float>(), expected, 1e-6));

  Scale(ctx, out, 4.0f);
  for (double& e : expected) e *= 4.0;
  EXPECT_TRUE(NearRelative(out.ToVector<float>(), expected, 1e-6));
}

TEST(BiasTest, BroadcastRowsBiasAddAndBiasGrad) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t rows = 7, cols = 300;  // Two column tiles.
  Tensor bias = RandomTensor({cols}, 6);
  const std::vector<float> bv = bias.ToVector<float>();
  Tensor y = Tensor::Empty({rows, cols}, DType::kFloat32);
  BroadcastRows(ctx, bias, y);
  std::vector<float> yv = y.ToVector<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(yv[r * cols + c], bv[c]);
  }
  Tensor x = RandomTensor({rows, cols}, 7);
  const std::vector<float> xv = x.ToVector<float>();
  BiasAdd(ctx, bias, x);
  std::vector<double> expected(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      expected[r * cols + c] = static_cast<double>(xv[r * cols + c]) + bv[c];
    }
  }
  EXPECT_TRUE(NearRelative(x.ToVector<float>(), expected, 1e-7));

  // BiasGrad accumulates column sums onto what is there.
  Tensor dy = RandomTensor({2, 3, cols}, 8);
  const std::vector<float> dyv = dy.ToVector<float>();
  Tensor dbias = Tensor::FromVector(std::vector<float>(cols, 1.0f), {cols});
  BiasGrad(ctx, dy, dbias);
  std::vector<double> sums(cols, 1.0);
  for (int64_t r = 0; r < 6; ++r) {
    for (int64_t c = 0; c < cols; ++c) sums[c] += dyv[r * cols + c];
  }
  EXPECT_TRUE(NearRelative(dbias.ToVector<float>(), sums, 1e-6));
}

// y = x + b; L = sum(y * w): dL/db by finite differences equals BiasGrad(w).
TEST(BiasTest, BiasGradMatchesFiniteDifferences) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t rows = 5, cols = 4;
  const std::vector<double> x = ToDouble(RandomTensor({rows, cols}, 9).ToVector<float>());
  Tensor w = RandomTensor({rows, cols}, 10);
  const std::vector<double> wd = ToDouble(w.ToVector<float>());
  auto loss = [&](const std::vector<double>& b) {
    double s = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) s += (x[r * cols + c] + b[c]) * wd[r * cols + c];
    }
    return s;
  };
  Tensor db = Tensor::Zeros({cols}, DType::kFloat32);
  BiasGrad(ctx, w, db);
  EXPECT_TRUE(NearRelative(db.ToVector<float>(),
                           testing::NumericGradient(loss, std::vector<double>(cols, 0.1)), 1e-6));
}

TEST(BiasTest, BiasGradIsBitwiseTheSameForAnyThreadCount) {
  Tensor dy = RandomTensor({333, 1000}, 11);
  std::vector<float> first;
  for (int threads : {1, 2, 4}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Tensor db = Tensor::Zeros({1000}, DType::kFloat32);
    BiasGrad(ctx, dy, db);
    if (first.empty()) {
      first = db.ToVector<float>();
    } else {
      EXPECT_EQ(db.ToVector<float>(), first) << threads;
    }
  }
}

TEST(ReductionTest, SumAndSumOfSquaresInDoubleAndThreadIndependent) {
  const int64_t n = 300001;  // Several 64 Ki blocks plus a tail.
  Tensor x = RandomTensor({n}, 12);
  const std::vector<float> xv = x.ToVector<float>();
  double sum = 0.0, sq = 0.0;
  for (float v : xv) {
    sum += v;
    sq += static_cast<double>(v) * v;
  }
  double first_sum = 0, first_sq = 0;
  for (int threads : {1, 2, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    const double s = Sum(ctx, x), q = SumOfSquares(ctx, x);
    EXPECT_NEAR(s, sum, 1e-9 * n);
    EXPECT_NEAR(q, sq, 1e-12 * sq);
    if (threads == 1) {
      first_sum = s;
      first_sq = q;
    } else {
      EXPECT_EQ(s, first_sum);
      EXPECT_EQ(q, first_sq);
    }
  }
}

TEST(ReductionTest, MultiTensorSumOfSquaresIsThePerTensorLoopBitForBit) {
  // Sizes across the 64 Ki block edge, an empty tensor and a scalar; the
  // contract is the per-tensor loop in tensor order, so equality is exact.
  const std::vector<Tensor> tensors = {RandomTensor({70000}, 21), RandomTensor({0}, 22),
                                       RandomTensor({1}, 23), RandomTensor({131073}, 24),
                                       RandomTensor({37, 5}, 25)};
  for (int threads : {1, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    double loop = 0.0;
    for (const Tensor& t : tensors) loop += SumOfSquares(ctx, t);
    const double multi = MultiTensorSumOfSquares(ctx, tensors);
    ASSERT_TRUE(std::isfinite(multi));
    EXPECT_EQ(std::bit_cast<uint64_t>(multi), std::bit_cast<uint64_t>(loop));
  }
  EXPECT_EQ(MultiTensorSumOfSquares(ExecContext::Cpu(), {}), 0.0);
}

TEST(ReductionTest, MultiTensorSumIsThePerTensorLoopBitForBit) {
  const std::vector<Tensor> tensors = {RandomTensor({70000}, 31), RandomTensor({0}, 32),
                                       RandomTensor({1}, 33), RandomTensor({8191}, 34)};
  for (int threads : {1, 3}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    double loop = 0.0;
    for (const Tensor& t : tensors) loop += Sum(ctx, t);
    const double multi = MultiTensorSum(ctx, tensors);
    ASSERT_TRUE(std::isfinite(multi));
    EXPECT_EQ(std::bit_cast<uint64_t>(multi), std::bit_cast<uint64_t>(loop));
  }
  EXPECT_EQ(MultiTensorSum(ExecContext::Cpu(), {}), 0.0);
}

TEST(ReductionTest, MultiTensorSumOfSquaresIsNotFiniteWhenAnyElementIsNot) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor bad = RandomTensor({1000}, 26);
  bad.data<float>()[517] = std::nanf("");
  EXPECT_TRUE(std::isnan(MultiTensorSumOfSquares(ctx, {RandomTensor({10}, 27), bad})));
  bad.data<float>()[517] = INFINITY;
  EXPECT_TRUE(std::isinf(MultiTensorSumOfSquares(ctx, {bad, RandomTensor({10}, 27)})));
}

TEST(ElementwiseDeathTest, BadArgumentsAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor a = Tensor::Empty({2, 3}, DType::kFloat32), b = Tensor::Empty({3, 2}, DType::kFloat32);
  EXPECT_DEATH(Add(ctx, a, b, a),
               "b is fp32\\[3, 2\\] cpu but must have the shape of a \\[2, 3\\]");
  EXPECT_DEATH(Scale(ctx, b.Transpose(0, 1), 2.0f), "must be contiguous");
  EXPECT_DEATH(BiasAdd(ctx, Tensor::Empty({2}, DType::kFloat32), a),
               "bias is fp32\\[2\\] cpu but must be \\[3\\]");
  EXPECT_DEATH(Copy(ctx, Tensor::Empty({2, 3}, DType::kInt32), a),
               "converts between float dtypes only");
  EXPECT_DEATH(MultiTensorSumOfSquares(ctx, {a, b.Transpose(0, 1)}),
               "MultiTensorSumOfSquares.*tensors\\[1\\].*must be contiguous");
  EXPECT_DEATH(MultiTensorSum(ctx, {b.Transpose(0, 1)}),
               "MultiTensorSum.*tensors\\[0\\].*must be contiguous");
}

}  // namespace
}  // namespace trident::ops
