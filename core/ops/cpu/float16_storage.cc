#include "core/ops/cpu/float16_storage.h"

#include <initializer_list>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/dtype.h"

namespace trident::ops::cpu {
namespace {

bool IsHalf(const Tensor& t) {
  return t.defined() && (t.dtype() == DType::kBFloat16 || t.dtype() == DType::kFloat16);
}

bool AnyHalf(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (IsHalf(*t)) return true;
  }
  return false;
}

// Elements per task of the conversions (a few microseconds each).
constexpr int64_t kConvertGrain = 1 << 15;

#if defined(__x86_64__)
// IEEE binary16 <-> fp32 with the F16C instructions (x86 since 2012), eight
// at a time: exact widening; rounding to nearest-even with IEEE overflow to
// infinity and subnormals, bit for bit what ToFloat16 computes.
__attribute__((target("f16c,avx"))) void WidenFp16F16c(const Float16* in, float* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = ToFloat(in[i]);
}

__attribute__((target("f16c,avx"))) void RoundFp16F16c(const float* in, Float16* out,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
  for (; i < n; ++i) out[i] = ToFloat16(in[i]);
}

bool HasF16c() {
  static const bool has = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return has;
}
#endif

// Contiguous 16-bit -> fp32 (exact) and fp32 -> 16-bit (nearest-even), split
// over the context's threads. The bf16 loops are plain shifts and adds that
// the compiler vectorises.
void Widen(const ExecContext& ctx, const Tensor& half, const Tensor& fp32) {
  float* out = fp32.data<float>();
  if (half.dtype() == DType::kBFloat16) {
    const BFloat16* in = half.data<BFloat16>();
    ctx.ParallelFor(half.numel(), kConvertGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = ToFloat(in[i]);
    });
    return;
  }
  const Float16* in = half.data<Float16>();
  ctx.ParallelFor(half.numel(), kConvertGrain, [&](int64_t b, int64_t e) {
#if defined(__x86_64__)
    if (HasF16c()) return WidenFp16F16c(in + b, out + b, e - b);
#endif
    for (int64_t i = b; i < e; ++i) out[i] = ToFloat(in[i]);
  });
}

void Round(const ExecContext& ctx, const Tensor& fp32, const Tensor& half) {
  const float* in = fp32.data<float>();
  if (half.dtype() == DType::kBFloat16) {
    BFloat16* out = half.data<BFloat16>();
    ctx.ParallelFor(half.numel(), kConvertGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = ToBFloat16(in[i]);
    });
    return;
  }
  Float16* out = half.data<Float16>();
  ctx.ParallelFor(half.numel(), kConvertGrain, [&](int64_t b, int64_t e) {
#if defined(__x86_64__)
    if (HasF16c()) return RoundFp16F16c(in + b, out + b, e - b);
#endif
    for (int64_t i = b; i < e; ++i) out[i] = ToFloat16(in[i]);
  });
}

// How an op uses an operand (core/ops/ops.h: outputs are overwritten or
// accumulated into).
enum class Use {
  kRead,        // an input
  kOverwrite,   // an output whose old value is never read
  kAccumulate,  // read and written: +=, in place, Gemm with beta != 0
};

// The fp32 stand-in for one operand: the operand itself unless it is 16-bit;
// then contiguous fp32 scratch from the context's allocator, filled from the
// operand unless the op overwrites it, and rounded back into it by Store().
class Fp32Operand {
 public:
  Fp32Operand(const Backend& fp32, const ExecContext& ctx, const Tensor& operand, Use use)
      : fp32_(fp32), ctx_(ctx), operand_(operand), use_(use) {
    if (!IsHalf(operand)) {
      value_ = operand;
      return;
    }
    value_ = Tensor::Empty(operand.shape(), DType::kFloat32, ctx.allocator());
    if (use != Use::kOverwrite) Widen(ctx, Contiguous16(operand), value_);
  }
  Fp32Operand(const Fp32Operand&) = delete;
  Fp32Operand& operator=(const Fp32Operand&) = delete;

  operator const Tensor&() const { return value_; }  // NOLINT: reads as the operand.

  // Rounds the fp32 result to nearest-even into the 16-bit operand (no-op for
  // fp32 operands, which the kernel wrote directly, and for inputs).
  void Store() const {
    if (!IsHalf(operand_) || use_ == Use::kRead) return;
    if (operand_.is_contiguous()) {
      Round(ctx_, value_, operand_);
      return;
    }
    // Conversions need contiguous tensors: round into a contiguous 16-bit
    // copy, then place it with a strided same-dtype copy.
    Tensor rounded = Tensor::Empty(operand_.shape(), operand_.dtype(), ctx_.allocator());
    Round(ctx_, value_, rounded);
    fp32_.Copy(ctx_, rounded, operand_);
  }

 private:
  Tensor Contiguous16(const Tensor& t) const {
    if (t.is_contiguous()) return t;
    Tensor packed = Tensor::Empty(t.shape(), t.dtype(), ctx_.allocator());
    fp32_.Copy(ctx_, t, packed);
    return packed;
  }

  const Backend& fp32_;
  const ExecContext& ctx_;
  Tensor operand_;
  Use use_;
  Tensor value_;
};

Use OutputOfGemm(float beta) { return beta == 0.0f ? Use::kOverwrite : Use::kAccumulate; }

}  // namespace

void Float16StorageBackend::Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a,
                                 const Tensor& b, Trans trans_b, const Tensor& c, float alpha,
                                 float beta) const {
  if (!AnyHalf({&a, &b, &c})) return fp32_.Gemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
  const Fp32Operand a32(fp32_, ctx, a, Use::kRead), b32(fp32_, ctx, b, Use::kRead);
  const Fp32Operand c32(fp32_, ctx, c, OutputOfGemm(beta));
  fp32_.Gemm(ctx, a32, trans_a, b32, trans_b, c32, alpha, beta);
  c32.Store();
}

void Float16StorageBackend::BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a,
                                        const Tensor& b, Trans trans_b, const Tensor& c,
                                        float alpha, float beta) const {
  if (!AnyHalf({&a, &b, &c})) {
    return fp32_.BatchedGemm(ctx, a, trans_a, b, trans_b, c, alpha, beta);
  }
  const Fp32Operand a32(fp32_, ctx, a, Use::kRead), b32(fp32_, ctx, b, Use::kRead);
  const Fp32Operand c32(fp32_, ctx, c, OutputOfGemm(beta));
  fp32_.BatchedGemm(ctx, a32, trans_a, b32, trans_b, c32, alpha, beta);
  c32.Store();
}

void Float16StorageBackend::LinearForward(const ExecContext& ctx, const Tensor& x,
                                          const Tensor& weight, const Tensor& bias,
                                          LinearEpilogue epilogue, const Tensor& y,
                                          const Tensor& pre) const {
  if (!AnyHalf({&x, &weight, &bias, &y, &pre})) {
    return fp32_.LinearForward(ctx, x, weight, bias, epilogue, y, pre);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), w32(fp32_, ctx, weight, Use::kRead),
      b32(fp32_, ctx, bias, Use::kRead);
  const Fp32Operand y32(fp32_, ctx, y, Use::kOverwrite), pre32(fp32_, ctx, pre, Use::kOverwrite);
  fp32_.LinearForward(ctx, x32, w32, b32, epilogue, y32, pre32);
  y32.Store();
  pre32.Store();
}

void Float16StorageBackend::LinearWeightGrad(const ExecContext& ctx, const Tensor& x,
                                             const Tensor& dy, const Tensor& dweight,
                                             const Tensor& dbias) const {
  if (!AnyHalf({&x, &dy, &dweight, &dbias})) {
    return fp32_.LinearWeightGrad(ctx, x, dy, dweight, dbias);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), dy32(fp32_, ctx, dy, Use::kRead);
  const Fp32Operand dw32(fp32_, ctx, dweight, Use::kAccumulate),
      db32(fp32_, ctx, dbias, Use::kAccumulate);
  fp32_.LinearWeightGrad(ctx, x32, dy32, dw32, db32);
  dw32.Store();
  db32.Store();
}

void Float16StorageBackend::Fill(const ExecContext& ctx, const Tensor& x, float value) const {
  if (!IsHalf(x)) return fp32_.Fill(ctx, x, value);
  const Fp32Operand x32(fp32_, ctx, x, Use::kOverwrite);
  fp32_.Fill(ctx, x32, value);
  x32.Store();
}

// Copy converts between every float dtype itself.
void Float16StorageBackend::Copy(const ExecContext& ctx, const Tensor& src,
                                 const Tensor& dst) const {
  fp32_.Copy(ctx, src, dst);
}

void Float16StorageBackend::Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                const Tensor& out) const {
  if (!AnyHalf({&a, &b, &out})) return fp32_.Add(ctx, a, b, out);
  const Fp32Operand a32(fp32_, ctx, a, Use::kRead), b32(fp32_, ctx, b, Use::kRead);
  const Fp32Operand out32(fp32_, ctx, out, Use::kOverwrite);
  fp32_.Add(ctx, a32, b32, out32);
  out32.Store();
}

void Float16StorageBackend::Axpy(const ExecContext& ctx, float alpha, const Tensor& x,
                                 const Tensor& y) const {
  if (!AnyHalf({&x, &y})) return fp32_.Axpy(ctx, alpha, x, y);
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), y32(fp32_, ctx, y, Use::kAccumulate);
  fp32_.Axpy(ctx, alpha, x32, y32);
  y32.Store();
}

void Float16StorageBackend::Scale(const ExecContext& ctx, const Tensor& x, float alpha) const {
  if (!IsHalf(x)) return fp32_.Scale(ctx, x, alpha);
  const Fp32Operand x32(fp32_, ctx, x, Use::kAccumulate);
  fp32_.Scale(ctx, x32, alpha);
  x32.Store();
}

void Float16StorageBackend::BroadcastRows(const ExecContext& ctx, const Tensor& row,
                                          const Tensor& out) const {
  if (!AnyHalf({&row, &out})) return fp32_.BroadcastRows(ctx, row, out);
  const Fp32Operand row32(fp32_, ctx, row, Use::kRead), out32(fp32_, ctx, out, Use::kOverwrite);
  fp32_.BroadcastRows(ctx, row32, out32);
  out32.Store();
}

void Float16StorageBackend::BiasAdd(const ExecContext& ctx, const Tensor& bias,
                                    const Tensor& x) const {
  if (!AnyHalf({&bias, &x})) return fp32_.BiasAdd(ctx, bias, x);
  const Fp32Operand bias32(fp32_, ctx, bias, Use::kRead), x32(fp32_, ctx, x, Use::kAccumulate);
  fp32_.BiasAdd(ctx, bias32, x32);
  x32.Store();
}

void Float16StorageBackend::BiasGrad(const ExecContext& ctx, const Tensor& dy,
                                     const Tensor& dbias) const {
  if (!AnyHalf({&dy, &dbias})) return fp32_.BiasGrad(ctx, dy, dbias);
  const Fp32Operand dy32(fp32_, ctx, dy, Use::kRead), db32(fp32_, ctx, dbias, Use::kAccumulate);
  fp32_.BiasGrad(ctx, dy32, db32);
  db32.Store();
}

double Float16StorageBackend::Sum(const ExecContext& ctx, const Tensor& x) const {
  if (!IsHalf(x)) return fp32_.Sum(ctx, x);
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead);
  return fp32_.Sum(ctx, x32);
}

double Float16StorageBackend::SumOfSquares(const ExecContext& ctx, const Tensor& x) const {
  if (!IsHalf(x)) return fp32_.SumOfSquares(ctx, x);
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead);
  return fp32_.SumOfSquares(ctx, x32);
}

double Float16StorageBackend::MultiTensorSum(const ExecContext& ctx,
                                             absl::Span<const Tensor> tensors) const {
  double sum = 0.0;
  for (const Tensor& t : tensors) sum += Sum(ctx, t);
  return sum;
}

double Float16StorageBackend::MultiTensorSumOfSquares(const ExecContext& ctx,
                                                      absl::Span<const Tensor> tensors) const {
  // Each 16-bit tensor widened on its own (one fp32 copy alive at a time).
  double sum = 0.0;
  for (const Tensor& t : tensors) sum += SumOfSquares(ctx, t);
  return sum;
}

void Float16StorageBackend::LayerNormForward(const ExecContext& ctx, const Tensor& x,
                                             const Tensor& gamma, const Tensor& beta,
                                             float epsilon, const Tensor& y, const Tensor& mean,
                                             const Tensor& rstd) const {
  if (!AnyHalf({&x, &gamma, &beta, &y, &mean, &rstd})) {
    return fp32_.LayerNormForward(ctx, x, gamma, beta, epsilon, y, mean, rstd);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), g32(fp32_, ctx, gamma, Use::kRead),
      b32(fp32_, ctx, beta, Use::kRead);
  const Fp32Operand y32(fp32_, ctx, y, Use::kOverwrite), mean32(fp32_, ctx, mean, Use::kOverwrite),
      rstd32(fp32_, ctx, rstd, Use::kOverwrite);
  fp32_.LayerNormForward(ctx, x32, g32, b32, epsilon, y32, mean32, rstd32);
  y32.Store();
  mean32.Store();
  rstd32.Store();
}

void Float16StorageBackend::LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                                   const Tensor& gamma, const Tensor& mean,
                                                   const Tensor& rstd, const Tensor& dy,
                                                   const Tensor& dx) const {
  if (!AnyHalf({&x, &gamma, &mean, &rstd, &dy, &dx})) {
    return fp32_.LayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, dx);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), g32(fp32_, ctx, gamma, Use::kRead),
      mean32(fp32_, ctx, mean, Use::kRead), rstd32(fp32_, ctx, rstd, Use::kRead),
      dy32(fp32_, ctx, dy, Use::kRead);
  const Fp32Operand dx32(fp32_, ctx, dx, Use::kOverwrite);
  fp32_.LayerNormBackwardInput(ctx, x32, g32, mean32, rstd32, dy32, dx32);
  dx32.Store();
}

void Float16StorageBackend::AddLayerNormForward(const ExecContext& ctx, const Tensor& a,
                                                const Tensor& b, const Tensor& gamma,
                                                const Tensor& beta, float epsilon,
                                                const Tensor& sum, const Tensor& y,
                                                const Tensor& mean, const Tensor& rstd) const {
  if (!AnyHalf({&a, &b, &gamma, &beta, &sum, &y, &mean, &rstd})) {
    return fp32_.AddLayerNormForward(ctx, a, b, gamma, beta, epsilon, sum, y, mean, rstd);
  }
  // `sum` may alias `a` (the residual stream updated in place): the inputs
  // are widened before any output is stored.
  const Fp32Operand a32(fp32_, ctx, a, Use::kRead), b32(fp32_, ctx, b, Use::kRead),
      g32(fp32_, ctx, gamma, Use::kRead), beta32(fp32_, ctx, beta, Use::kRead);
  const Fp32Operand sum32(fp32_, ctx, sum, Use::kOverwrite), y32(fp32_, ctx, y, Use::kOverwrite),
      mean32(fp32_, ctx, mean, Use::kOverwrite), rstd32(fp32_, ctx, rstd, Use::kOverwrite);
  fp32_.AddLayerNormForward(ctx, a32, b32, g32, beta32, epsilon, sum32, y32, mean32, rstd32);
  sum32.Store();
  y32.Store();
  mean32.Store();
  rstd32.Store();
}

void Float16StorageBackend::AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                                      const Tensor& gamma, const Tensor& mean,
                                                      const Tensor& rstd, const Tensor& dy,
                                                      const Tensor& d_residual,
                                                      const Tensor& dx) const {
  if (!AnyHalf({&x, &gamma, &mean, &rstd, &dy, &d_residual, &dx})) {
    return fp32_.AddLayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, d_residual, dx);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), g32(fp32_, ctx, gamma, Use::kRead),
      mean32(fp32_, ctx, mean, Use::kRead), rstd32(fp32_, ctx, rstd, Use::kRead),
      dy32(fp32_, ctx, dy, Use::kRead), dr32(fp32_, ctx, d_residual, Use::kRead);
  const Fp32Operand dx32(fp32_, ctx, dx, Use::kOverwrite);
  fp32_.AddLayerNormBackwardInput(ctx, x32, g32, mean32, rstd32, dy32, dr32, dx32);
  dx32.Store();
}

void Float16StorageBackend::LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x,
                                                     const Tensor& mean, const Tensor& rstd,
                                                     const Tensor& dy, const Tensor& dgamma,
                                                     const Tensor& dbeta) const {
  if (!AnyHalf({&x, &mean, &rstd, &dy, &dgamma, &dbeta})) {
    return fp32_.LayerNormBackwardWeights(ctx, x, mean, rstd, dy, dgamma, dbeta);
  }
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), mean32(fp32_, ctx, mean, Use::kRead),
      rstd32(fp32_, ctx, rstd, Use::kRead), dy32(fp32_, ctx, dy, Use::kRead);
  const Fp32Operand dg32(fp32_, ctx, dgamma, Use::kAccumulate),
      db32(fp32_, ctx, dbeta, Use::kAccumulate);
  fp32_.LayerNormBackwardWeights(ctx, x32, mean32, rstd32, dy32, dg32, db32);
  dg32.Store();
  db32.Store();
}

void Float16StorageBackend::GeluForward(const ExecContext& ctx, const Tensor& x,
                                        const Tensor& y) const {
  if (!AnyHalf({&x, &y})) return fp32_.GeluForward(ctx, x, y);
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), y32(fp32_, ctx, y, Use::kOverwrite);
  fp32_.GeluForward(ctx, x32, y32);
  y32.Store();
}

void Float16StorageBackend::GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                         const Tensor& dx) const {
  if (!AnyHalf({&x, &dy, &dx})) return fp32_.GeluBackward(ctx, x, dy, dx);
  const Fp32Operand x32(fp32_, ctx, x, Use::kRead), dy32(fp32_, ctx, dy, Use::kRead);
  const Fp32Operand dx32(fp32_, ctx, dx, Use::kOverwrite);
  fp32_.GeluBackward(ctx, x32, dy32, dx32);
  dx32.Store();
}

void Float16StorageBackend::AttentionForward(const ExecContext& ctx, const Tensor& qkv,
                                             int num_heads, const Tensor& out,
                                             const Tensor& lse) const {
  if (!AnyHalf({&qkv, &out, &lse})) return fp32_.AttentionForward(ctx, qkv, num_heads, out, lse);
  const Fp32Operand qkv32(fp32_, ctx, qkv, Use::kRead);
  const Fp32Operand out32(fp32_, ctx, out, Use::kOverwrite), lse32(fp32_, ctx, lse, Use::kOverwrite);
  fp32_.AttentionForward(ctx, qkv32, num_heads, out32, lse32);
  out32.Store();
  lse32.Store();
}

void Float16StorageBackend::AttentionBackward(const ExecContext& ctx, const Tensor& qkv,
                                              const Tensor& out, const Tensor& lse,
                                              const Tensor& dout, int num_heads,
                                              const Tensor& dqkv) const {
  if (!AnyHalf({&qkv, &out, &lse, &dout, &dqkv})) {
    return fp32_.AttentionBackward(ctx, qkv, out, lse, dout, num_heads, dqkv);
  }
  const Fp32Operand qkv32(fp32_, ctx, qkv, Use::kRead), out32(fp32_, ctx, out, Use::kRead),
      lse32(fp32_, ctx, lse, Use::kRead), dout32(fp32_, ctx, dout, Use::kRead);
  const Fp32Operand dqkv32(fp32_, ctx, dqkv, Use::kOverwrite);
  fp32_.AttentionBackward(ctx, qkv32, out32, lse32, dout32, num_heads, dqkv32);
  dqkv32.Store();
}

void Float16StorageBackend::GatherRows(const ExecContext& ctx, const Tensor& ids,
                                       const Tensor& table, int64_t row_start,
                                       OutOfRangeIds policy, const Tensor& out) const {
  if (!AnyHalf({&table, &out})) return fp32_.GatherRows(ctx, ids, table, row_start, policy, out);
  const Fp32Operand table32(fp32_, ctx, table, Use::kRead), out32(fp32_, ctx, out, Use::kOverwrite);
  fp32_.GatherRows(ctx, ids, table32, row_start, policy, out32);
  out32.Store();
}

void Float16StorageBackend::ScatterAddRows(const ExecContext& ctx, const Tensor& ids,
                                           const Tensor& dout, int64_t row_start,
                                           OutOfRangeIds policy, const Tensor& dtable) const {
  if (!AnyHalf({&dout, &dtable})) {
    return fp32_.ScatterAddRows(ctx, ids, dout, row_start, policy, dtable);
  }
  const Fp32Operand dout32(fp32_, ctx, dout, Use::kRead),
      dtable32(fp32_, ctx, dtable, Use::kAccumulate);
  fp32_.ScatterAddRows(ctx, ids, dout32, row_start, policy, dtable32);
  dtable32.Store();
}

void Float16StorageBackend::AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                                                 const Tensor& out) const {
  if (!AnyHalf({&wpe, &out})) return fp32_.AddPositionEmbedding(ctx, wpe, out);
  const Fp32Operand wpe32(fp32_, ctx, wpe, Use::kRead), out32(fp32_, ctx, out, Use::kAccumulate);
  fp32_.AddPositionEmbedding(ctx, wpe32, out32);
  out32.Store();
}

void Float16StorageBackend::PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                                                  const Tensor& dwpe) const {
  if (!AnyHalf({&dout, &dwpe})) return fp32_.PositionEmbeddingGrad(ctx, dout, dwpe);
  const Fp32Operand dout32(fp32_, ctx, dout, Use::kRead),
      dwpe32(fp32_, ctx, dwpe, Use::kAccumulate);
  fp32_.PositionEmbeddingGrad(ctx, dout32, dwpe32);
  dwpe32.Store();
}

void Float16StorageBackend::RowMax(const ExecContext& ctx, const Tensor& logits,
                                   const CrossEntropyOptions& options,
                                   const Tensor& row_max) const {
  if (!AnyHalf({&logits, &row_max})) return fp32_.RowMax(ctx, logits, options, row_max);
  const Fp32Operand logits32(fp32_, ctx, logits, Use::kRead),
      max32(fp32_, ctx, row_max, Use::kOverwrite);
  fp32_.RowMax(ctx, logits32, options, max32);
  max32.Store();
}

void Float16StorageBackend::RowSumExp(const ExecContext& ctx, const Tensor& logits,
                                      const Tensor& row_max, const CrossEntropyOptions& options,
                                      const Tensor& sum_exp) const {
  if (!AnyHalf({&logits, &row_max, &sum_exp})) {
    return fp32_.RowSumExp(ctx, logits, row_max, options, sum_exp);
  }
  const Fp32Operand logits32(fp32_, ctx, logits, Use::kRead),
      max32(fp32_, ctx, row_max, Use::kRead), sum32(fp32_, ctx, sum_exp, Use::kOverwrite);
  fp32_.RowSumExp(ctx, logits32, max32, options, sum32);
  sum32.Store();
}

void Float16StorageBackend::TargetLogit(const ExecContext& ctx, const Tensor& logits,
                                        const Tensor& targets, const CrossEntropyOptions& options,
                                        const Tensor& target_logit) const {
  if (!AnyHalf({&logits, &target_logit})) {
    return fp32_.TargetLogit(ctx, logits, targets, options, target_logit);
  }
  const Fp32Operand logits32(fp32_, ctx, logits, Use::kRead),
      target32(fp32_, ctx, target_logit, Use::kOverwrite);
  fp32_.TargetLogit(ctx, logits32, targets, options, target32);
  target32.Store();
}

void Float16StorageBackend::CrossEntropyForward(const ExecContext& ctx, const Tensor& logits,
                                                const Tensor& targets,
                                                const CrossEntropyOptions& options,
                                                const Tensor& losses,
                                                const Tensor& logsumexp) const {
  if (!AnyHalf({&logits, &losses, &logsumexp})) {
    return fp32_.CrossEntropyForward(ctx, logits, targets, options, losses, logsumexp);
  }
  const Fp32Operand logits32(fp32_, ctx, logits, Use::kRead);
  const Fp32Operand losses32(fp32_, ctx, losses, Use::kOverwrite),
      lse32(fp32_, ctx, logsumexp, Use::kOverwrite);
  fp32_.CrossEntropyForward(ctx, logits32, targets, options, losses32, lse32);
  losses32.Store();
  lse32.Store();
}

void Float16StorageBackend::CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits,
                                                 const Tensor& targets, const Tensor& logsumexp,
                                                 float grad_scale,
                                                 const CrossEntropyOptions& options,
                                                 const Tensor& dlogits) const {
  if (!AnyHalf({&logits, &logsumexp, &dlogits})) {
    return fp32_.CrossEntropyBackward(ctx, logits, targets, logsumexp, grad_scale, options,
                                      dlogits);
  }
  const Fp32Operand logits32(fp32_, ctx, logits, Use::kRead),
      lse32(fp32_, ctx, logsumexp, Use::kRead);
  const Fp32Operand dlogits32(fp32_, ctx, dlogits, Use::kOverwrite);
  fp32_.CrossEntropyBackward(ctx, logits32, targets, lse32, grad_scale, options, dlogits32);
  dlogits32.Store();
}

void Float16StorageBackend::CombineCrossEntropyParts(const ExecContext& ctx,
                                                     const Tensor& row_max, const Tensor& sum_exp,
                                                     const Tensor& target_logit,
                                                     const Tensor& targets, int32_t ignore_index,
                                                     const Tensor& losses,
                                                     const Tensor& logsumexp) const {
  if (!AnyHalf({&row_max, &sum_exp, &target_logit, &losses, &logsumexp})) {
    return fp32_.CombineCrossEntropyParts(ctx, row_max, sum_exp, target_logit, targets,
                                          ignore_index, losses, logsumexp);
  }
  const Fp32Operand max32(fp32_, ctx, row_max, Use::kRead), sum32(fp32_, ctx, sum_exp, Use::kRead),
      target32(fp32_, ctx, target_logit, Use::kRead);
  const Fp32Operand losses32(fp32_, ctx, losses, Use::kOverwrite),
      lse32(fp32_, ctx, logsumexp, Use::kOverwrite);
  fp32_.CombineCrossEntropyParts(ctx, max32, sum32, target32, targets, ignore_index, losses32,
                                 lse32);
  losses32.Store();
  lse32.Store();
}

int64_t Float16StorageBackend::CountTargets(const ExecContext& ctx, const Tensor& targets,
                                            int32_t ignore_index) const {
  return fp32_.CountTargets(ctx, targets, ignore_index);
}

void Float16StorageBackend::AdamWStep(const ExecContext& ctx, const Tensor& param,
                                      const Tensor& grad, const Tensor& exp_avg,
                                      const Tensor& exp_avg_sq, const AdamWOptions& options,
                                      WeightDecay decay) const {
  if (!AnyHalf({&param, &grad, &exp_avg, &exp_avg_sq})) {
    return fp32_.AdamWStep(ctx, param, grad, exp_avg, exp_avg_sq, options, decay);
  }
  const Fp32Operand param32(fp32_, ctx, param, Use::kAccumulate),
      grad32(fp32_, ctx, grad, Use::kRead), m32(fp32_, ctx, exp_avg, Use::kAccumulate),
      v32(fp32_, ctx, exp_avg_sq, Use::kAccumulate);
  fp32_.AdamWStep(ctx, param32, grad32, m32, v32, options, decay);
  param32.Store();
  m32.Store();
  v32.Store();
}

}  // namespace trident::ops::cpu
