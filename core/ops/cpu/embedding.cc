// CpuBackendImpl: GatherRows, ScatterAddRows, AddPositionEmbedding,
// PositionEmbeddingGrad.

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/parallel.h"
#include "core/ops/validate.h"

namespace trident::ops::cpu {
namespace {

// The table row of `id`, or -1 when it is outside [row_start, row_start + rows)
// and the policy allows that.
inline int64_t TableRow(int32_t id, int64_t row_start, int64_t rows, OutOfRangeIds policy,
                        const char* op) {
  const int64_t row = static_cast<int64_t>(id) - row_start;
  if (row >= 0 && row < rows) return row;
  TRIDENT_CHECK(policy == OutOfRangeIds::kSkip)
      << "ops::" << op << ": token id " << id << " is outside the table's rows [" << row_start
      << ", " << row_start + rows << ")";
  return -1;
}

}  // namespace

void CpuBackendImpl::GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table,
                                int64_t row_start, OutOfRangeIds policy, const Tensor& out) const {
  internal::CheckFloat32(ctx, "GatherRows", {{"table", table}, {"out", out}});
  const int64_t n = ids.numel(), rows = table.dim(0), cols = table.dim(1);
  const int32_t* pid = ids.data<int32_t>();
  const float* pt = table.data<float>();
  float* po = out.data<float>();
  ctx.ParallelFor(n, RowGrain(cols), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = TableRow(pid[i], row_start, rows, policy, "GatherRows");
      float* dst = po + i * cols;
      if (row < 0) {
        std::fill(dst, dst + cols, 0.0f);
      } else {
        std::memcpy(dst, pt + row * cols, cols * sizeof(float));
      }
    }
  });
}

void CpuBackendImpl::ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                                    int64_t row_start, OutOfRangeIds policy,
                                    const Tensor& dtable) const {
  internal::CheckFloat32(ctx, "ScatterAddRows", {{"dout", dout}, {"dtable", dtable}});
  const int64_t n = ids.numel(), rows = dtable.dim(0), cols = dtable.dim(1);
  const int32_t* pid = ids.data<int32_t>();
  const float* pd = dout.data<float>();
  float* pt = dtable.data<float>();
  // Validate first so that a bad id aborts before anything is written.
  for (int64_t i = 0; i < n; ++i) TableRow(pid[i], row_start, rows, policy, "ScatterAddRows");
  // Threads own column tiles, and each walks the ids in order: no races on
  // repeated ids, and the same summation order for any thread count.
  const int64_t tiles = CeilDiv(cols, kColumnTile);
  ctx.ParallelFor(tiles, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c0 = t * kColumnTile;
      const int64_t width = std::min(kColumnTile, cols - c0);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t row = static_cast<int64_t>(pid[i]) - row_start;
        if (row < 0 || row >= rows) continue;
        float* dst = pt + row * cols + c0;
        const float* src = pd + i * cols + c0;
        for (int64_t c = 0; c < width; ++c) dst[c] += src[c];
      }
    }
  });
}

void CpuBackendImpl::AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                                          const Tensor& out) const {
  internal::CheckFloat32(ctx, "AddPositionEmbedding", {{"wpe", wpe}, {"out", out}});
  const int64_t seq = out.dim(1), cols = out.dim(2);
  const int64_t rows = out.dim(0) * seq;
  const float* pw = wpe.data<float>();
  float* po = out.data<float>();
  ctx.ParallelFor(rows, RowGrain(cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* src = pw + (r % seq) * cols;
      float* dst = po + r * cols;
      for (int64_t c = 0; c < cols; ++c) dst[c] += src[c];
    }
  });
}

void CpuBackendImpl::PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                                           const Tensor& dwpe) const {
  internal::CheckFloat32(ctx, "PositionEmbeddingGrad", {{"dout", dout}, {"dwpe", dwpe}});
  const int64_t batch = dout.dim(0), seq = dout.dim(1), cols = dout.dim(2);
  const float* pd = dout.data<float>();
  float* pw = dwpe.data<float>();
  ctx.ParallelFor(seq, RowGrain(cols * batch), [&](int64_t s0, int64_t s1) {
    for (int64_t t = s0; t < s1; ++t) {
      float* dst = pw + t * cols;
      for (int64_t b = 0; b < batch; ++b) {
        const float* src = pd + (b * seq + t) * cols;
        for (int64_t c = 0; c < cols; ++c) dst[c] += src[c];
      }
    }
  });
}

}  // namespace trident::ops::cpu
