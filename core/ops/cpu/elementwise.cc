// CpuBackendImpl: Fill, Copy, Add, Axpy, Scale, BroadcastRows, BiasAdd,
// BiasGrad, Sum, SumOfSquares.

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/cpu/vec_math.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// Runs body(begin, end) over [0, n) elements in parallel chunks.
template <typename Body>
void ForElements(const ExecContext& ctx, int64_t n, Body body) {
  ctx.ParallelFor(n, kElementwiseGrain, body);
}

// Copies between same-dtype tensors of one shape with any strides: the rows
// (all dims but the last) are spread over threads, each row walked with its
// strides.
template <typename T>
void StridedCopy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) {
  const int nd = src.ndim();
  const T* s = static_cast<const T*>(src.raw_data());
  T* d = static_cast<T*>(dst.raw_data());
  if (nd == 0) {
    *d = *s;
    return;
  }
  const int64_t cols = src.dim(-1);
  if (cols == 0) return;
  const int64_t rows = src.numel() / cols;
  const int64_t ss = src.stride(-1), ds = dst.stride(-1);
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      // Offsets of row r: decompose r over the leading dims.
      int64_t rem = r, so = 0, dof = 0;
      for (int dim = nd - 2; dim >= 0; --dim) {
        const int64_t idx = rem % src.dim(dim);
        rem /= src.dim(dim);
        so += idx * src.stride(dim);
        dof += idx * dst.stride(dim);
      }
      const T* sp = s + so;
      T* dp = d + dof;
      if (ss == 1 && ds == 1) {
        std::memcpy(dp, sp, cols * sizeof(T));
      } else {
        for (int64_t c = 0; c < cols; ++c) dp[c * ds] = sp[c * ss];
      }
    }
  });
}

float LoadAsFloat(const void* p, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kFloat32:
      return static_cast<const float*>(p)[i];
    case DType::kBFloat16:
      return ToFloat(static_cast<const BFloat16*>(p)[i]);
    case DType::kFloat16:
      return ToFloat(static_cast<const Float16*>(p)[i]);
    default:
      TRIDENT_CHECK(false) << "not a float dtype: " << DTypeName(dtype);
  }
  return 0.0f;
}

void StoreFromFloat(void* p, DType dtype, int64_t i, float v) {
  switch (dtype) {
    case DType::kFloat32:
      static_cast<float*>(p)[i] = v;
      return;
    case DType::kBFloat16:
      static_cast<BFloat16*>(p)[i] = ToBFloat16(v);
      return;
    case DType::kFloat16:
      static_cast<Float16*>(p)[i] = ToFloat16(v);
      return;
    default:
      TRIDENT_CHECK(false) << "not a float dtype: " << DTypeName(dtype);
  }
}

// Sum over fixed blocks, partial sums added in block order (deterministic for
// any thread count). value(x) is what is summed.
constexpr int64_t kReductionBlock = int64_t{1} << 16;

template <typename Value>
double BlockedSum(const ExecContext& ctx, const float* x, int64_t n, Value value) {
  const int64_t blocks = CeilDiv(n, kReductionBlock);
  std::vector<double> partial(blocks, 0.0);
  ctx.ParallelFor(blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t begin = blk * kReductionBlock;
      const int64_t end = std::min(n, begin + kReductionBlock);
      double lanes[8] = {};
      int64_t i = begin;
      for (; i + 8 <= end; i += 8) {
        for (int l = 0; l < 8; ++l) lanes[l] += value(x[i + l]);
      }
      double tail = 0.0;
      for (; i < end; ++i) tail += value(x[i]);
      double total = 0.0;
      for (int l = 0; l < 8; ++l) total += lanes[l];
      partial[blk] = total + tail;
    }
  });
  double sum = 0.0;
  for (double p : partial) sum += p;
  return sum;
}

}  // namespace

void CpuBackendImpl::Fill(const ExecContext& ctx, const Tensor& x, float value) const {
  internal::CheckFloat32(ctx, "Fill", "x", x);
  float* p = x.data<float>();
  ForElements(ctx, x.numel(), [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
}

void CpuBackendImpl::Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) const {
  if (src.numel() == 0) return;
  if (src.dtype() != dst.dtype()) {  // Conversion; both contiguous (checked by the op).
    const void* s = src.raw_data();
    void* d = dst.raw_data();
    const DType sd = src.dtype(), dd = dst.dtype();
    ForElements(ctx, src.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) StoreFromFloat(d, dd, i, LoadAsFloat(s, sd, i));
    });
    return;
  }
  if (src.is_contiguous() && dst.is_contiguous()) {
    const char* s = static_cast<const char*>(src.raw_data());
    char* d = static_cast<char*>(dst.raw_data());
    const int64_t bytes = static_cast<int64_t>(src.nbytes());
    ctx.ParallelFor(bytes, kElementwiseGrain * 4,
                    [&](int64_t b, int64_t e) { std::memcpy(d + b, s + b, e - b); });
    return;
  }
  switch (src.element_size()) {
    case 2:
      StridedCopy<uint16_t>(ctx, src, dst);
      return;
    case 4:
      StridedCopy<uint32_t>(ctx, src, dst);
      return;
    case 8:
      StridedCopy<uint64_t>(ctx, src, dst);
      return;
  }
  TRIDENT_CHECK(false) << "ops::Copy: unsupported element size " << src.element_size();
}

void CpuBackendImpl::Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                         const Tensor& out) const {
  internal::CheckFloat32(ctx, "Add", "a", a);
  internal::CheckFloat32(ctx, "Add", "b", b);
  internal::CheckFloat32(ctx, "Add", "out", out);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* po = out.data<float>();
  ForElements(ctx, a.numel(), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) po[i] = pa[i] + pb[i];
  });
}

void CpuBackendImpl::Axpy(const ExecContext& ctx, float alpha, const Tensor& x,
                          const Tensor& y) const {
  internal::CheckFloat32(ctx, "Axpy", "x", x);
  internal::CheckFloat32(ctx, "Axpy", "y", y);
  const float* px = x.data<float>();
  float* py = y.data<float>();
  ForElements(ctx, x.numel(), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) py[i] += alpha * px[i];
  });
}

void CpuBackendImpl::Scale(const ExecContext& ctx, const Tensor& x, float alpha) const {
  internal::CheckFloat32(ctx, "Scale", "x", x);
  float* p = x.data<float>();
  ForElements(ctx, x.numel(), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) p[i] *= alpha;
  });
}

void CpuBackendImpl::BroadcastRows(const ExecContext& ctx, const Tensor& row,
                                   const Tensor& out) const {
  internal::CheckFloat32(ctx, "BroadcastRows", "row", row);
  internal::CheckFloat32(ctx, "BroadcastRows", "out", out);
  const int64_t cols = row.numel();
  if (cols == 0) return;
  const int64_t rows = out.numel() / cols;
  const float* pr = row.data<float>();
  float* po = out.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) std::memcpy(po + r * cols, pr, cols * sizeof(float));
  });
}

void CpuBackendImpl::BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) const {
  internal::CheckFloat32(ctx, "BiasAdd", "bias", bias);
  internal::CheckFloat32(ctx, "BiasAdd", "x", x);
  const int64_t cols = bias.numel();
  if (cols == 0) return;
  const int64_t rows = x.numel() / cols;
  const float* pb = bias.data<float>();
  float* px = x.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = px + r * cols;
      for (int64_t c = 0; c < cols; ++c) row[c] += pb[c];
    }
  });
}

void CpuBackendImpl::BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) const {
  internal::CheckFloat32(ctx, "BiasGrad", "dy", dy);
  internal::CheckFloat32(ctx, "BiasGrad", "dbias", dbias);
  const int64_t cols = dbias.numel();
  if (cols == 0) return;
  const int64_t rows = dy.numel() / cols;
  const float* pdy = dy.data<float>();
  float* pdb = dbias.data<float>();
  const int64_t tiles = CeilDiv(cols, kColumnTile);
  ctx.ParallelFor(tiles, 1, [&](int64_t t0, int64_t t1) {
    const int64_t c0 = t0 * kColumnTile, c1 = std::min(cols, t1 * kColumnTile);
    AddColumnSums(pdy, rows, cols, c0, c1, pdb + c0);
  });
}

double CpuBackendImpl::Sum(const ExecContext& ctx, const Tensor& x) const {
  internal::CheckFloat32(ctx, "Sum", "x", x);
  return BlockedSum(ctx, x.data<float>(), x.numel(),
                    [](float v) { return static_cast<double>(v); });
}

double CpuBackendImpl::SumOfSquares(const ExecContext& ctx, const Tensor& x) const {
  internal::CheckFloat32(ctx, "SumOfSquares", "x", x);
  return BlockedSum(ctx, x.data<float>(), x.numel(), [](float v) {
    const double d = v;
    return d * d;
  });
}

double CpuBackendImpl::MultiTensorSum(const ExecContext& ctx,
                                      absl::Span<const Tensor> tensors) const {
  // Tensor order, each blocked as Sum: the same bits as a loop over Sum.
  double sum = 0.0;
  for (const Tensor& t : tensors) sum += Sum(ctx, t);
  return sum;
}

double CpuBackendImpl::MultiTensorSumOfSquares(const ExecContext& ctx,
                                               absl::Span<const Tensor> tensors) const {
  // Tensor order, each tensor blocked as SumOfSquares: the same bits as the
  // per-tensor loop the optimizer ran before this op existed.
  double sum = 0.0;
  for (const Tensor& t : tensors) sum += SumOfSquares(ctx, t);
  return sum;
}

}  // namespace trident::ops::cpu
