#include "core/cuda/gemm_layout.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

// Element (i, j) of op(X) for a column-major stored operand.
float At(const std::vector<float>& data, const LtOperand& x, int64_t i, int64_t j) {
  return x.transpose ? data[j + i * x.ld] : data[i + j * x.ld];
}

// Runs D = op(A) op(B) the way cuBLASLt reads the layout, on plain host
// buffers, so the mapping is checked against the row-major definition.
std::vector<float> ColumnMajorProduct(const LtGemmLayout& layout, const std::vector<float>& a,
                                      const std::vector<float>& b) {
  std::vector<float> d(layout.d.ld * layout.d.cols, 0.0f);
  for (int64_t i = 0; i < layout.m; ++i) {
    for (int64_t j = 0; j < layout.n; ++j) {
      float sum = 0.0f;
      for (int64_t p = 0; p < layout.k; ++p) sum += At(a, layout.a, i, p) * At(b, layout.b, p, j);
      d[i + j * layout.d.ld] = sum;
    }
  }
  return d;
}

// Distinct small integers: every product and sum is exact in fp32.
std::vector<float> Sequence(int64_t n, int offset) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>((i * 7 + offset) % 11 - 5);
  return v;
}

constexpr int64_t kTokens = 5, kIn = 3, kOut = 4;

TEST(GemmLayoutTest, ForwardComputesRowMajorXTimesW) {
  const std::vector<float> x = Sequence(kTokens * kIn, 1);  // [tokens, in]
  const std::vector<float> w = Sequence(kIn * kOut, 2);     // [in, out]
  const LtGemmLayout layout = ForwardLayout(kTokens, kIn, kOut);
  EXPECT_EQ(layout.d.rows, layout.m);
  EXPECT_EQ(layout.d.cols, layout.n);
  const std::vector<float> y = ColumnMajorProduct(layout, /*a=*/w, /*b=*/x);
  for (int64_t t = 0; t < kTokens; ++t) {
    for (int64_t o = 0; o < kOut; ++o) {
      float expected = 0.0f;
      for (int64_t i = 0; i < kIn; ++i) expected += x[t * kIn + i] * w[i * kOut + o];
      EXPECT_EQ(y[t * kOut + o], expected) << "y[" << t << ", " << o << "]";
    }
  }
}

TEST(GemmLayoutTest, WeightGradComputesRowMajorXTransposeTimesDy) {
  const std::vector<float> x = Sequence(kTokens * kIn, 3);    // [tokens, in]
  const std::vector<float> dy = Sequence(kTokens * kOut, 4);  // [tokens, out]
  const LtGemmLayout layout = WeightGradLayout(kTokens, kIn, kOut);
  const std::vector<float> dw = ColumnMajorProduct(layout, /*a=*/dy, /*b=*/x);
  for (int64_t i = 0; i < kIn; ++i) {
    for (int64_t o = 0; o < kOut; ++o) {
      float expected = 0.0f;
      for (int64_t t = 0; t < kTokens; ++t) expected += x[t * kIn + i] * dy[t * kOut + o];
      EXPECT_EQ(dw[i * kOut + o], expected) << "dW[" << i << ", " << o << "]";
    }
  }
}

TEST(GemmLayoutTest, BiasRunsAlongTheRowsOfD) {
  // The forward bias and the weight-gradient bias (BGRADA: A summed over k)
  // are both indexed by D's rows, which must be the output features.
  EXPECT_EQ(ForwardLayout(kTokens, kIn, kOut).m, kOut);
  const LtGemmLayout grad = WeightGradLayout(kTokens, kIn, kOut);
  EXPECT_EQ(grad.m, kOut);
  EXPECT_EQ(grad.k, kTokens);
  EXPECT_FALSE(grad.a.transpose);
  EXPECT_EQ(grad.a.rows, kOut);
}

TEST(GemmLayoutTest, DescribesItself) {
  EXPECT_EQ(LayoutToString(ForwardLayout(kTokens, kIn, kOut)),
            "m=4 n=5 k=3 A[4 x 3, ld 4, N] B[3 x 5, ld 3, N] D[4 x 5, ld 4, N]");
}

}  // namespace
}  // namespace trident::cuda
