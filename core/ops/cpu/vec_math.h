#ifndef TRIDENT_CORE_OPS_CPU_VEC_MATH_H_
#define TRIDENT_CORE_OPS_CPU_VEC_MATH_H_

// Branch-free scalar helpers written so that GCC auto-vectorises the loops that
// call them (-O2/-O3 with -march=x86-64-v3: 8 floats per AVX2 instruction).
// libm's expf/tanhf are calls the compiler cannot vectorise without
// -ffast-math, and softmax, cross-entropy and GELU spend their time in them.
//
// The kernels are compiled with -O3 -fno-trapping-math (core/ops/cpu/BUILD):
// GCC 12 vectorises only with the full cost model of -O3, and refuses to turn
// the float compares of FastExp into vector blends while FP exceptions count as
// observable. Neither flag changes a result.
//
// Reductions keep kLanes independent partial sums (combined in a fixed order at
// the end), which the compiler maps onto vector registers without needing to
// reassociate, so results are deterministic and do not depend on the build's
// vector width.

#include <bit>
#include <cmath>
#include <cstdint>

namespace trident::ops::cpu {

inline constexpr int kLanes = 8;

// e^x with a relative error below 2e-7 (about 1-2 ulp) for x in [-87.3, 88.37];
// 0 below; +inf above (2^n overflows where e^x is within 30% of FLT_MAX, which
// softmax arguments, always <= 0, never approach); NaN in, NaN out.
// Method: x = n ln2 + r with |r| <= ln2/2 (ln2 split into a part exact in float
// and a correction, so n*ln2_hi is exact), e^r by its Taylor series to degree 7
// (truncation error r^8/8! < 6e-9), and 2^n built directly in the exponent bits.
inline float FastExp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693145751953125f;  // 0x3f317200: low bits zero.
  constexpr float kLn2Lo = static_cast<float>(0.6931471805599453094 - 0.693145751953125);
  // Round to nearest by adding and subtracting 1.5 * 2^23 (|x log2e| < 2^22).
  constexpr float kRoundingShift = 12582912.0f;
  float clamped = x < -87.5f ? -87.5f : x;
  clamped = clamped > 88.5f ? 88.5f : clamped;
  const float n = (clamped * kLog2e + kRoundingShift) - kRoundingShift;
  const float r = (clamped - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t exponent = (static_cast<int32_t>(n) + 127) << 23;
  float result = p * std::bit_cast<float>(exponent);
  result = x < -87.3f ? 0.0f : result;
  return x != x ? x : result;
}

// 1 / (1 + e^-x), accurate in relative terms for all x (no cancellation).
inline float FastSigmoid(float x) { return 1.0f / (1.0f + FastExp(-x)); }

// GPT-2's tanh GELU and its derivative. 0.5 (1 + tanh(u)) = sigmoid(2u), so
// GELU(x) = x * sigmoid(2u) with u = sqrt(2/pi) (x + 0.044715 x^3): the sigmoid
// form has no cancellation near u = 0 (unlike 1 + tanh computed from exp) and
// vectorises through FastExp. One home for the GELU kernel and the fused
// GEMM + bias + GELU epilogue, so the two agree bit for bit.
inline constexpr float kGeluSqrt2OverPi = 0.7978845608028654f;
inline constexpr float kGeluCubic = 0.044715f;

inline float Gelu(float x) {
  const float u = kGeluSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return x * FastSigmoid(2.0f * u);
}

// d GELU(x) / dx = s + x s (1 - s) 2 u' with s = sigmoid(2u).
inline float GeluDerivative(float x) {
  const float u = kGeluSqrt2OverPi * (x + kGeluCubic * x * x * x);
  const float du = kGeluSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  const float s = FastSigmoid(2.0f * u);
  return s + x * s * (1.0f - s) * 2.0f * du;
}

// max_i x[i] (n >= 1), lane l taking the elements i = l mod kLanes as in the
// other reductions. Written with GCC's vector type: in the lane-array form GCC
// 12 emits one scalar vmaxss per element (it does not SLP-vectorise the
// compare-select), and attention calls it once per score row.
inline float MaxOf(const float* x, int64_t n) {
  using Lanes = float __attribute__((vector_size(kLanes * sizeof(float))));
  float m = x[0];
  int64_t i = 0;
  if (n >= kLanes) {
    Lanes lanes;
    __builtin_memcpy(&lanes, x, sizeof(lanes));
    for (i = kLanes; i + kLanes <= n; i += kLanes) {
      Lanes v;
      __builtin_memcpy(&v, x + i, sizeof(v));
      lanes = lanes > v ? lanes : v;
    }
    m = lanes[0];
    for (int l = 1; l < kLanes; ++l) m = m > lanes[l] ? m : lanes[l];
  }
  for (; i < n; ++i) m = m > x[i] ? m : x[i];
  return m;
}

// sum_i x[i], accumulated in float lanes.
inline float SumOf(const float* x, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + l];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i];
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total + s;
}

// sum_i x[i] * y[i], accumulated in float lanes.
inline float DotOf(const float* x, const float* y, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[i + l] * y[i + l];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += x[i] * y[i];
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total + s;
}

// x[i] = e^(x[i] - shift) in place; returns the sum of the new values,
// accumulated in double lanes (rows of tens of thousands of logits).
inline double ExpShiftSum(float* x, int64_t n, float shift) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float e = FastExp(x[i + l] - shift);
      x[i + l] = e;
      lanes[l] += e;
    }
  }
  double s = 0.0;
  for (; i < n; ++i) {
    x[i] = FastExp(x[i] - shift);
    s += x[i];
  }
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total + s;
}

// sum_i e^(x[i] - shift) without writing, in double lanes.
inline double SumExpShift(const float* x, int64_t n, float shift) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += FastExp(x[i + l] - shift);
  }
  double s = 0.0;
  for (; i < n; ++i) s += FastExp(x[i] - shift);
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += lanes[l];
  return total + s;
}

// sums[c - c0] += sum over rows r of x[r * ld + c], for columns [c0, c1) of a
// row-major [rows, ld] matrix: each column in double, rows in order, then
// rounded once, so the result does not depend on how columns are split
// (BiasGrad and the fused LinearWeightGrad share it, and agree bit for bit).
inline void AddColumnSums(const float* x, int64_t rows, int64_t ld, int64_t c0, int64_t c1,
                          float* sums) {
  constexpr int64_t kTile = 128;  // double accumulators on the stack
  for (int64_t t0 = c0; t0 < c1; t0 += kTile) {
    const int64_t width = t0 + kTile < c1 ? kTile : c1 - t0;
    double acc[kTile] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * ld + t0;
      for (int64_t c = 0; c < width; ++c) acc[c] += row[c];
    }
    for (int64_t c = 0; c < width; ++c) sums[t0 - c0 + c] += static_cast<float>(acc[c]);
  }
}

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_VEC_MATH_H_
