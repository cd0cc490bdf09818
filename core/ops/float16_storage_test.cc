// bf16/fp16 operands through the public ops: the CPU backend registered by the
// dispatch (cpu::Float16StorageBackend over the fp32 kernels) converts 16-bit
// operands to fp32, computes, and rounds 16-bit outputs to nearest-even. So
// every result must equal, BIT FOR BIT, the fp32 op on the same (exactly
// representable) values followed by one rounding of the outputs; and against a
// double reference the error is one rounding of the output: relative 2^-8 for
// bf16 (8 significant bits), 2^-11 for fp16 (11 bits).

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/ops.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::RandomTensor;

constexpr DType kHalfTypes[] = {DType::kBFloat16, DType::kFloat16};

// `x` stored as `dtype` (rounded to nearest-even).
Tensor As(const ExecContext& ctx, const Tensor& x, DType dtype) {
  Tensor out = Tensor::Empty(x.shape(), dtype);
  Copy(ctx, x, out);
  return out;
}

std::vector<float> Values(const ExecContext& ctx, const Tensor& x) {
  return As(ctx, Contiguous(ctx, x), DType::kFloat32).ToVector<float>();
}

// One rounding of each output to its 16-bit format: what a 16-bit result must be.
std::vector<float> Rounded(const ExecContext& ctx, const Tensor& fp32, DType dtype) {
  return Values(ctx, As(ctx, fp32, dtype));
}

// A random tensor whose values are exactly representable in `dtype`.
Tensor RandomIn(const ExecContext& ctx, absl::Span<const int64_t> shape, uint32_t seed,
                DType dtype) {
  return As(ctx, RandomTensor(shape, seed), dtype);
}

double HalfUlp(DType dtype) { return dtype == DType::kBFloat16 ? 0x1p-8 : 0x1p-11; }

TEST(Float16StorageTest, TheCpuKernelsThemselvesStillRefuse16BitOperands) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor h = Tensor::Zeros({3, 4}, DType::kBFloat16), b = Tensor::Zeros({4, 5}, DType::kFloat32);
  Tensor c = Tensor::Empty({3, 5}, DType::kFloat32);
  EXPECT_DEATH(cpu::CpuBackend().Gemm(ctx, h, Trans::kNo, b, Trans::kNo, c, 1, 0),
               "computes in fp32 only: a is bf16");
}

TEST(Float16StorageTest, GemmEqualsTheFp32GemmOfTheSameValuesRoundedOnce) {
  ExecContext ctx = ExecContext::Cpu(2);
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    Tensor a = RandomIn(ctx, {37, 64}, 1, dtype), b = RandomIn(ctx, {64, 29}, 2, dtype);
    Tensor c = Tensor::Empty({37, 29}, dtype);
    Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
    Tensor c32 = Matmul(ctx, As(ctx, a, DType::kFloat32), Trans::kNo, As(ctx, b, DType::kFloat32),
                        Trans::kNo);
    EXPECT_EQ(Values(ctx, c), Rounded(ctx, c32, dtype));

    // Against double: one rounding of the output, relative to the largest.
    const std::vector<float> av = Values(ctx, a), bv = Values(ctx, b);
    std::vector<double> expected(37 * 29, 0.0);
    for (int i = 0; i < 37; ++i) {
      for (int j = 0; j < 29; ++j) {
        for (int k = 0; k < 64; ++k) expected[i * 29 + j] += double{av[i * 64 + k]} * bv[k * 29 + j];
      }
    }
    EXPECT_TRUE(testing::NearRelative(Values(ctx, c), expected, HalfUlp(dtype)));
  }
}

// Megatron's accumulate_allreduce_grads_in_fp32: 16-bit activations, weight
// gradients summed over micro-batches into an fp32 buffer, never rounded.
TEST(Float16StorageTest, Bf16WeightGradientsAccumulateIntoFp32WithoutRounding) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor x1 = RandomIn(ctx, {16, 8}, 3, DType::kBFloat16);
  Tensor dy1 = RandomIn(ctx, {16, 12}, 4, DType::kBFloat16);
  Tensor x2 = RandomIn(ctx, {16, 8}, 5, DType::kBFloat16);
  Tensor dy2 = RandomIn(ctx, {16, 12}, 6, DType::kBFloat16);
  Tensor dw = Tensor::Zeros({8, 12}, DType::kFloat32);
  Gemm(ctx, x1, Trans::kYes, dy1, Trans::kNo, dw, 1, 1);
  Gemm(ctx, x2, Trans::kYes, dy2, Trans::kNo, dw, 1, 1);
  Tensor ref = Tensor::Zeros({8, 12}, DType::kFloat32);
  for (auto [x, dy] : {std::pair{x1, dy1}, std::pair{x2, dy2}}) {
    Gemm(ctx, As(ctx, x, DType::kFloat32), Trans::kYes, As(ctx, dy, DType::kFloat32), Trans::kNo,
         ref, 1, 1);
  }
  EXPECT_EQ(dw.ToVector<float>(), ref.ToVector<float>());
}

TEST(Float16StorageTest, StridedViewsAreReadAndWrittenInPlace) {
  ExecContext ctx = ExecContext::Cpu();
  // A column window of a wider bf16 matrix times b, into a column window of c.
  Tensor wide = RandomIn(ctx, {9, 20}, 7, DType::kBFloat16);
  Tensor b = RandomIn(ctx, {6, 5}, 8, DType::kBFloat16);
  Tensor c = RandomIn(ctx, {9, 11}, 9, DType::kBFloat16);
  const std::vector<float> c_before = Values(ctx, c);
  Tensor a = wide.Slice(1, 4, 6), c_window = c.Slice(1, 3, 5);
  Tensor ref = As(ctx, Contiguous(ctx, c_window), DType::kFloat32);
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c_window, 1, 1);  // accumulates: c is read

  Gemm(ctx, As(ctx, Contiguous(ctx, a), DType::kFloat32), Trans::kNo, As(ctx, b, DType::kFloat32),
       Trans::kNo, ref, 1, 1);
  EXPECT_EQ(Values(ctx, c_window), Rounded(ctx, ref, DType::kBFloat16));
  const std::vector<float> c_after = Values(ctx, c);
  for (int i = 0; i < 9; ++i) {
    for (int j = 0; j < 11; ++j) {
      if (j >= 3 && j < 8) continue;
      EXPECT_EQ(c_after[i * 11 + j], c_before[i * 11 + j]) << "outside the window: " << i << "," << j;
    }
  }
}

TEST(Float16StorageTest, StoresRoundToNearestEven) {
  ExecContext ctx = ExecContext::Cpu();
  // 1 + 2^-8 is halfway between bf16's 1 and 1 + 2^-7: even is 1.
  // 1 + 2^-7 + 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  Tensor a = As(ctx, Tensor::FromVector<float>({1.0f, 1.0f + 0x1p-7f}, {2}), DType::kBFloat16);
  Tensor b = Tensor::FromVector<float>({0x1p-8f, 0x1p-8f}, {2});
  Tensor out = Tensor::Empty({2}, DType::kBFloat16);
  Add(ctx, a, b, out);
  EXPECT_EQ(Values(ctx, out), (std::vector<float>{1.0f, 1.0f + 0x1p-6f}));
  // fp16 overflow gives infinity, never a wrapped finite value.
  Tensor h = As(ctx, Tensor::FromVector<float>({60000.0f}, {1}), DType::kFloat16);
  Scale(ctx, h, 2.0f);
  EXPECT_TRUE(std::isinf(Values(ctx, h)[0]));
}

// The vectorised fp16 conversions (F16C where the CPU has it) against the
// scalar reference of core/dtype.h, on every one of the 65536 fp16 patterns
// (widening) and on fp32 values around every rounding boundary, subnormals,
// overflow and NaN (rounding).
TEST(Float16StorageTest, Fp16ConversionsMatchTheScalarReferenceBitForBit) {
  ExecContext ctx = ExecContext::Cpu();
  std::vector<float> every;
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    every.push_back(ToFloat(Float16{static_cast<uint16_t>(bits)}));
  }
  std::vector<float> probes;
  for (float v : every) {
    if (std::isnan(v)) continue;
    probes.push_back(v);
    probes.push_back(std::nextafter(v, 0.0f));
    probes.push_back(std::nextafter(v, v > 0 ? 1e30f : -1e30f));
    probes.push_back(v * 1.00048828125f);  // halfway-ish between neighbours
  }
  probes.push_back(std::numeric_limits<float>::quiet_NaN());
  probes.push_back(70000.0f);
  probes.push_back(-1e-9f);
  const int64_t n = static_cast<int64_t>(probes.size());
  Tensor x = Tensor::FromVector<float>(probes, {n});
  Tensor h = Tensor::Empty({n}, DType::kFloat16);
  Tensor y = Tensor::Zeros({1, n}, DType::kFloat16);
  Copy(ctx, x, h);             // the scalar reference (the CPU kernels' Copy)
  BroadcastRows(ctx, x, y);    // a pure copy, rounded by the decorator
  const std::vector<Float16> want = h.ToVector<Float16>(), got = y.ToVector<Float16>();
  for (size_t i = 0; i < probes.size(); ++i) {
    ASSERT_EQ(got[i].bits, want[i].bits) << "fp32 " << probes[i];  // -0 stays -0 too
  }
  // Widening back through the decorator: the scalar ToFloat of each.
  Tensor back = Tensor::Empty({1, n}, DType::kFloat32);
  BroadcastRows(ctx, h, back);
  const std::vector<float> widened = back.ToVector<float>();
  for (size_t i = 0; i < probes.size(); ++i) {
    const float expected = ToFloat(want[i]);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(widened[i]));
    } else {
      ASSERT_EQ(std::signbit(widened[i]), std::signbit(expected)) << i;
      ASSERT_EQ(widened[i], expected) << i;
    }
  }
}

TEST(Float16StorageTest, NaNPropagatesThroughAGemm) {
  ExecContext ctx = ExecContext::Cpu();
  std::vector<float> av(4 * 3, 0.5f);
  av[4] = std::numeric_limits<float>::quiet_NaN();
  Tensor a = As(ctx, Tensor::FromVector<float>(av, {4, 3}), DType::kBFloat16);
  Tensor b = RandomIn(ctx, {3, 2}, 10, DType::kBFloat16);
  Tensor c = Tensor::Empty({4, 2}, DType::kBFloat16);
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
  const std::vector<float> cv = Values(ctx, c);
  EXPECT_TRUE(std::isnan(cv[2]) && std::isnan(cv[3]));
  EXPECT_TRUE(std::isfinite(cv[0]) && std::isfinite(cv[7]));
}

// The rest of a transformer layer's ops, 16-bit activations and parameters with
// fp32 LayerNorm statistics and fp32 weight gradients, as a mixed-precision
// model calls them: each equals the fp32 op on the same values, rounded once.
TEST(Float16StorageTest, LayerOpsEqualTheFp32OpsRoundedOnce) {
  ExecContext ctx = ExecContext::Cpu(2);
  constexpr int64_t kB = 2, kT = 8, kHeads = 2, kC = 16;
  for (DType dtype : kHalfTypes) {
    SCOPED_TRACE(DTypeName(dtype));
    auto f32 = [&](const Tensor& t) { return As(ctx, t, DType::kFloat32); };
    // LayerNorm forward and backward.
    Tensor x = RandomIn(ctx, {kB * kT, kC}, 11, dtype), gamma = RandomIn(ctx, {kC}, 12, dtype);
    Tensor beta = RandomIn(ctx, {kC}, 13, dtype), dy = RandomIn(ctx, {kB * kT, kC}, 14, dtype);
    Tensor y = Tensor::Empty(x.shape(), dtype), dx = Tensor::Empty(x.shape(), dtype);
    Tensor mean = Tensor::Empty({kB * kT}, DType::kFloat32);
    Tensor rstd = Tensor::Empty({kB * kT}, DType::kFloat32);
    Tensor dgamma = Tensor::Zeros({kC}, DType::kFloat32), dbeta = Tensor::Zeros({kC}, DType::kFloat32);
    LayerNormForward(ctx, x, gamma, beta, kLayerNormEpsilon, y, mean, rstd);
    LayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, dx);
    LayerNormBackwardWeights(ctx, x, mean, rstd, dy, dgamma, dbeta);
    Tensor y32 = Tensor::Empty(x.shape(), DType::kFloat32), dx32 = Tensor::Empty(x.shape(), DType::kFloat32);
    Tensor mean32 = Tensor::Empty({kB * kT}, DType::kFloat32);
    Tensor rstd32 = Tensor::Empty({kB * kT}, DType::kFloat32);
    Tensor dgamma32 = Tensor::Zeros({kC}, DType::kFloat32);
    Tensor dbeta32 = Tensor::Zeros({kC}, DType::kFloat32);
    LayerNormForward(ctx, f32(x), f32(gamma), f32(beta), kLayerNormEpsilon, y32, mean32, rstd32);
    LayerNormBackwardInput(ctx, f32(x), f32(gamma), mean32, rstd32, f32(dy), dx32);
    LayerNormBackwardWeights(ctx, f32(x), mean32, rstd32, f32(dy), dgamma32, dbeta32);
    EXPECT_EQ(Values(ctx, y), Rounded(ctx, y32, dtype));
    EXPECT_EQ(mean.ToVector<float>(), mean32.ToVector<float>());
    EXPECT_EQ(Values(ctx, dx), Rounded(ctx, dx32, dtype));
    EXPECT_EQ(dgamma.ToVector<float>(), dgamma32.ToVector<float>());
    EXPECT_EQ(dbeta.ToVector<float>(), dbeta32.ToVector<float>());

    // GELU.
    Tensor g = Tensor::Empty(x.shape(), dtype), g32 = Tensor::Empty(x.shape(), DType::kFloat32);
    GeluForward(ctx, x, g);
    GeluForward(ctx, f32(x), g32);
    EXPECT_EQ(Values(ctx, g), Rounded(ctx, g32, dtype));

    // Attention: 16-bit activations, fp32 softmax statistics (as the model
    // keeps them), forward and backward.
    Tensor qkv = RandomIn(ctx, {kB, kT, 3 * kC}, 15, dtype);
    Tensor out = Tensor::Empty({kB, kT, kC}, dtype);
    Tensor lse = Tensor::Empty({kB, kHeads, kT}, DType::kFloat32);
    Tensor out32 = Tensor::Empty({kB, kT, kC}, DType::kFloat32);
    Tensor lse32 = Tensor::Empty({kB, kHeads, kT}, DType::kFloat32);
    AttentionForward(ctx, qkv, kHeads, out, lse);
    AttentionForward(ctx, f32(qkv), kHeads, out32, lse32);
    EXPECT_EQ(Values(ctx, out), Rounded(ctx, out32, dtype));
    EXPECT_EQ(lse.ToVector<float>(), lse32.ToVector<float>());
    Tensor dout = RandomIn(ctx, {kB, kT, kC}, 16, dtype);
    Tensor dqkv = Tensor::Empty(qkv.shape(), dtype);
    Tensor dqkv32 = Tensor::Empty(qkv.shape(), DType::kFloat32);
    AttentionBackward(ctx, qkv, out, lse, dout, kHeads, dqkv);
    AttentionBackward(ctx, f32(qkv), f32(out), lse, f32(dout), kHeads, dqkv32);
    EXPECT_EQ(Values(ctx, dqkv), Rounded(ctx, dqkv32, dtype));

    // The fused linear epilogue (bias + GELU, keeping the pre-activation) and
    // its weight gradient with the bias gradient, into fp32 gradients.
    Tensor w = RandomIn(ctx, {kC, 2 * kC}, 17, dtype), bias = RandomIn(ctx, {2 * kC}, 18, dtype);
    Tensor act = Tensor::Empty({kB * kT, 2 * kC}, dtype), pre = Tensor::Empty(act.shape(), dtype);
    Tensor act32 = Tensor::Empty(act.shape(), DType::kFloat32);
    Tensor pre32 = Tensor::Empty(act.shape(), DType::kFloat32);
    LinearForward(ctx, x, w, bias, LinearEpilogue::kBiasGelu, act, pre);
    LinearForward(ctx, f32(x), f32(w), f32(bias), LinearEpilogue::kBiasGelu, act32, pre32);
    EXPECT_EQ(Values(ctx, act), Rounded(ctx, act32, dtype));
    EXPECT_EQ(Values(ctx, pre), Rounded(ctx, pre32, dtype));
    Tensor dact = RandomIn(ctx, act.shape(), 19, dtype);
    Tensor dw = Tensor::Zeros(w.shape(), DType::kFloat32), dw32 = Tensor::Zeros(w.shape(), DType::kFloat32);
    Tensor dbias = Tensor::Zeros({2 * kC}, DType::kFloat32);
    Tensor dbias32 = Tensor::Zeros({2 * kC}, DType::kFloat32);
    LinearWeightGrad(ctx, x, dact, dw, dbias);
    LinearWeightGrad(ctx, f32(x), f32(dact), dw32, dbias32);
    EXPECT_EQ(dw.ToVector<float>(), dw32.ToVector<float>());
    EXPECT_EQ(dbias.ToVector<float>(), dbias32.ToVector<float>());

    // Residual add + LayerNorm, the sum written over its first operand.
    Tensor residual = As(ctx, x, dtype), residual32 = f32(x);
    Tensor normed = Tensor::Empty(x.shape(), dtype), normed32 = Tensor::Empty(x.shape(), DType::kFloat32);
    AddLayerNormForward(ctx, residual, dy, gamma, beta, kLayerNormEpsilon, residual, normed, mean,
                        rstd);
    AddLayerNormForward(ctx, residual32, f32(dy), f32(gamma), f32(beta), kLayerNormEpsilon,
                        residual32, normed32, mean32, rstd32);
    EXPECT_EQ(Values(ctx, residual), Rounded(ctx, residual32, dtype));
    EXPECT_EQ(Values(ctx, normed), Rounded(ctx, normed32, dtype));

    // Bias gradient into fp32, and a reduction of 16-bit values.
    Tensor db = Tensor::Zeros({kC}, DType::kFloat32), db32 = Tensor::Zeros({kC}, DType::kFloat32);
    BiasGrad(ctx, dy, db);
    BiasGrad(ctx, f32(dy), db32);
    EXPECT_EQ(db.ToVector<float>(), db32.ToVector<float>());
    EXPECT_EQ(SumOfSquares(ctx, dy), SumOfSquares(ctx, f32(dy)));
    EXPECT_EQ(MultiTensorSumOfSquares(ctx, {dy, x, db}),
              SumOfSquares(ctx, f32(dy)) + SumOfSquares(ctx, f32(x)) + SumOfSquares(ctx, db));
  }
}

}  // namespace
}  // namespace trident::ops
