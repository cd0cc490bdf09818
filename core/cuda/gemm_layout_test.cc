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

// Element (i, j) of op(X) for a row-major stored operand with row stride `ld`.
float RowMajorAt(const std::vector<float>& data, int64_t offset, bool transpose, int64_t ld,
                 int64_t i, int64_t j) {
  return transpose ? data[offset + j * ld + i] : data[offset + i * ld + j];
}

// Every Trans combination, padded row strides and a batch at odd strides: the
// cuBLASLt reading of GemmLayout's answer is the row-major product of
// core/ops/gemm.h, and it touches no padding element of C.
TEST(GemmLayoutTest, GeneralProductMatchesTheRowMajorDefinition) {
  constexpr int64_t kM = 3, kN = 4, kK = 5, kBatch = 2;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      RowMajorGemm gemm{.m = kM, .n = kN, .k = kK, .transpose_a = ta, .transpose_b = tb};
      gemm.row_stride_a = (ta ? kM : kK) + 2;
      gemm.row_stride_b = (tb ? kK : kN) + 1;
      gemm.row_stride_c = kN + 3;
      gemm.batch = kBatch;
      gemm.batch_stride_a = gemm.row_stride_a * (ta ? kK : kM) + 7;
      gemm.batch_stride_b = gemm.row_stride_b * (tb ? kN : kK) + 5;
      gemm.batch_stride_c = gemm.row_stride_c * kM + 1;
      const std::vector<float> a = Sequence(gemm.batch_stride_a * kBatch, 1);
      const std::vector<float> b = Sequence(gemm.batch_stride_b * kBatch, 2);
      const LtGemmLayout layout = GemmLayout(gemm);
      ASSERT_EQ(layout.batch, kBatch);
      std::vector<float> c(gemm.batch_stride_c * kBatch, -99.0f);
      for (int64_t batch = 0; batch < kBatch; ++batch) {
        // cuBLASLt's reading: D(i, j) at d[i + j * ld] in batch `batch`.
        for (int64_t i = 0; i < layout.m; ++i) {
          for (int64_t j = 0; j < layout.n; ++j) {
            float sum = 0.0f;
            for (int64_t p = 0; p < layout.k; ++p) {
              const float a_ip = layout.a.transpose
                                     ? b[batch * layout.a.batch_stride + p + i * layout.a.ld]
                                     : b[batch * layout.a.batch_stride + i + p * layout.a.ld];
              const float b_pj = layout.b.transpose
                                     ? a[batch * layout.b.batch_stride + j + p * layout.b.ld]
                                     : a[batch * layout.b.batch_stride + p + j * layout.b.ld];
              sum += a_ip * b_pj;
            }
            c[batch * layout.d.batch_stride + i + j * layout.d.ld] = sum;
          }
        }
        for (int64_t i = 0; i < kM; ++i) {
          for (int64_t j = 0; j < kN; ++j) {
            float expected = 0.0f;
            for (int64_t p = 0; p < kK; ++p) {
              expected += RowMajorAt(a, batch * gemm.batch_stride_a, ta, gemm.row_stride_a, i, p) *
                          RowMajorAt(b, batch * gemm.batch_stride_b, tb, gemm.row_stride_b, p, j);
            }
            EXPECT_EQ(c[batch * gemm.batch_stride_c + i * gemm.row_stride_c + j], expected)
                << "ta " << ta << " tb " << tb << " batch " << batch << " C[" << i << ", " << j
                << "]";
          }
          for (int64_t j = kN; j < gemm.row_stride_c; ++j) {
            EXPECT_EQ(c[batch * gemm.batch_stride_c + i * gemm.row_stride_c + j], -99.0f)
                << "padding of C written";
          }
        }
      }
    }
  }
}

TEST(GemmLayoutTest, LinearLayoutsAreTheGeneralMappingOfTheirOperands) {
  EXPECT_EQ(ForwardLayout(kTokens, kIn, kOut), GemmLayout({.m = kTokens,
                                                           .n = kOut,
                                                           .k = kIn,
                                                           .row_stride_a = kIn,
                                                           .row_stride_b = kOut,
                                                           .row_stride_c = kOut}));
  // cuBLASLt needs ld >= rows of every stored operand.
  for (const LtGemmLayout& layout :
       {ForwardLayout(kTokens, kIn, kOut), WeightGradLayout(kTokens, kIn, kOut)}) {
    for (const LtOperand& x : {layout.a, layout.b, layout.d}) EXPECT_GE(x.ld, x.rows);
  }
}

TEST(GemmLayoutTest, DescribesItself) {
  EXPECT_EQ(LayoutToString(ForwardLayout(kTokens, kIn, kOut)),
            "m=4 n=5 k=3 A[4 x 3, ld 4, N] B[3 x 5, ld 3, N] D[4 x 5, ld 4, N]");
  LtGemmLayout batched = ForwardLayout(kTokens, kIn, kOut);
  batched.batch = 2;
  batched.a.batch_stride = 12;
  batched.b.batch_stride = 15;
  batched.d.batch_stride = 20;
  EXPECT_EQ(LayoutToString(batched),
            "m=4 n=5 k=3 A[4 x 3, ld 4, N] B[3 x 5, ld 3, N] D[4 x 5, ld 4, N] batch=2 strides "
            "12/15/20");
}

}  // namespace
}  // namespace trident::cuda
