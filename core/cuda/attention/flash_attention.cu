#include "core/cuda/attention/flash_attention.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/attention/attention_shape.h"
#include "core/cuda/float_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Keys (forward, dQ) or queries (dK/dV) per staged tile: one per lane.
constexpr int kTile = kWarp;
constexpr int kMaxD = static_cast<int>(kMaxFlashHeadDim);
// Each lane owns output dims lane, lane + 32, ... of its warp's row.
constexpr int kDimsPerLane = kMaxD / kWarp;
// Tiles that lane r reads row r of (lane-indexed rows) get one float of
// padding, so the 32 lanes hit 32 different banks.
constexpr int kPaddedD = kMaxD + 1;
// Warps (= rows) per block: the forward's query rows; the backward kernels'
// query rows (dQ) or key rows (dK/dV), fewer because they stage two row tiles
// each. Every kernel's static shared memory stays under the 48 KiB default.
constexpr int kForwardRows = 16;
constexpr int kBackwardRows = 8;
// The dK/dV kernel computes Delta for its 32 staged queries, 4 per warp.
static_assert(kTile % kBackwardRows == 0);

// One call's dims and where each element lives (core/ops/attention.h):
//   qkv[b, t, part, h, e] at ((b T + t) 3 + part) C + h D + e
//   out[b, t, h, e]       at (b T + t) C + h D + e
//   lse[b, h, t]          at (b H + h) T + t
struct Dims {
  int64_t seq;
  int64_t heads;
  int head_dim;
  int64_t channels;  // C = H D
  float scale;       // 1 / sqrt(D), as the CPU twin computes it

  __device__ int64_t Qkv(int64_t b, int64_t t, int part, int64_t h, int e) const {
    return ((b * seq + t) * 3 + part) * channels + h * head_dim + e;
  }
  __device__ int64_t Out(int64_t b, int64_t t, int64_t h, int e) const {
    return (b * seq + t) * channels + h * head_dim + e;
  }
  __device__ int64_t Lse(int64_t b, int64_t h, int64_t t) const {
    return (b * heads + h) * seq + t;
  }
};

constexpr int kQuery = 0, kKey = 1, kValue = 2;

__device__ __forceinline__ float WarpSum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// The last row of the tile [row0, row0 + rows) that exists.
__device__ __forceinline__ int64_t LastRow(int64_t seq, int64_t row0, int rows) {
  return (row0 + rows < seq ? row0 + rows : seq) - 1;
}

__device__ __forceinline__ float Dot(const float* a, const float* b, int n) {
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) sum += a[e] * b[e];
  return sum;
}

// Rows [row0, row0 + kTile) of one head's part of qkv (zeros past the end)
// into a [kTile][kPaddedD] shared tile, by the whole block.
template <typename T>
__device__ void StageTile(const T* qkv, const Dims& d, int64_t b, int64_t h, int part, int64_t row0,
                          float (*tile)[kPaddedD]) {
  for (int idx = threadIdx.x; idx < kTile * d.head_dim; idx += blockDim.x) {
    const int r = idx / d.head_dim, e = idx % d.head_dim;
    const int64_t t = row0 + r;
    tile[r][e] = t < d.seq ? Load(qkv + d.Qkv(b, t, part, h, e)) : 0.0f;
  }
}

// Block (query tile, head, batch); warp w handles query row i = tile * 16 + w.
template <typename T>
__global__ void __launch_bounds__(kForwardRows* kWarp)
    FlashForwardKernel(const T* __restrict__ qkv, T* __restrict__ out, float* __restrict__ lse,
                       Dims d) {
  __shared__ float q_s[kForwardRows][kMaxD];
  __shared__ float k_s[kTile][kPaddedD];
  __shared__ float v_s[kTile][kPaddedD];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kForwardRows;
  const int64_t i = row0 + warp;
  const bool active = i < d.seq;
  if (active) {
    for (int e = lane; e < d.head_dim; e += kWarp) {
      q_s[warp][e] = Load(qkv + d.Qkv(b, i, kQuery, h, e));
    }
  }
  float m = -INFINITY;  // running max of the row's scores
  float l = 0.0f;       // running sum of e^(s - m)
  float acc[kDimsPerLane] = {};
  // Key tiles up to the block's last row (the same bound for every warp, so
  // every thread reaches every __syncthreads).
  const int64_t last_row = LastRow(d.seq, row0, kForwardRows);
  for (int64_t j0 = 0; j0 <= last_row; j0 += kTile) {
    __syncthreads();  // the previous tile is consumed; q_s is written
    StageTile(qkv, d, b, h, kKey, j0, k_s);
    StageTile(qkv, d, b, h, kValue, j0, v_s);
    __syncthreads();
    if (!active || j0 > i) continue;  // the whole tile is in this row's future
    const int64_t j = j0 + lane;
    const bool visible = j <= i;  // causal; implies j < seq
    const float s = visible ? Dot(q_s[warp], k_s[lane], d.head_dim) * d.scale : -INFINITY;
    // Key j0 <= i is visible, so the tile max is finite.
    const float m_new = fmaxf(m, WarpMax(s));
    const float correction = expf(m - m_new);  // 0 on the first tile (m = -inf)
    const float p = visible ? expf(s - m_new) : 0.0f;
    l = l * correction + WarpSum(p);
#pragma unroll
    for (int r = 0; r < kDimsPerLane; ++r) acc[r] *= correction;
    for (int jj = 0; jj < kTile; ++jj) {
      const float p_j = __shfl_sync(kFullMask, p, jj);
#pragma unroll
      for (int r = 0; r < kDimsPerLane; ++r) {
        const int e = lane + r * kWarp;
        if (e < d.head_dim) acc[r] += p_j * v_s[jj][e];
      }
    }
    m = m_new;
  }
  if (!active) return;
  const float inv_l = 1.0f / l;  // l >= 1: the max term contributes e^0
#pragma unroll
  for (int r = 0; r < kDimsPerLane; ++r) {
    const int e = lane + r * kWarp;
    if (e < d.head_dim) Store(out + d.Out(b, i, h, e), acc[r] * inv_l);
  }
  if (lane == 0) lse[d.Lse(b, h, i)] = m + logf(l);
}

// Block (query tile, head, batch); warp w handles query row i = tile * 8 + w
// and writes dQ_i = scale sum_{j <= i} dS_ij K_j.
template <typename T>
__global__ void __launch_bounds__(kBackwardRows* kWarp)
    FlashBackwardQueryKernel(const T* __restrict__ qkv, const T* __restrict__ out,
                             const float* __restrict__ lse, const T* __restrict__ dout,
                             T* __restrict__ dqkv, Dims d) {
  __shared__ float q_s[kBackwardRows][kMaxD];
  __shared__ float do_s[kBackwardRows][kMaxD];
  __shared__ float k_s[kTile][kPaddedD];
  __shared__ float v_s[kTile][kPaddedD];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBackwardRows;
  const int64_t i = row0 + warp;
  const bool active = i < d.seq;
  float delta = 0.0f, row_lse = 0.0f;
  if (active) {
    float partial = 0.0f;  // this lane's share of Delta_i = dO_i . O_i
    for (int e = lane; e < d.head_dim; e += kWarp) {
      q_s[warp][e] = Load(qkv + d.Qkv(b, i, kQuery, h, e));
      const float g = Load(dout + d.Out(b, i, h, e));
      do_s[warp][e] = g;
      partial += g * Load(out + d.Out(b, i, h, e));
    }
    delta = WarpSum(partial);
    row_lse = lse[d.Lse(b, h, i)];
  }
  float dq[kDimsPerLane] = {};
  const int64_t last_row = LastRow(d.seq, row0, kBackwardRows);
  for (int64_t j0 = 0; j0 <= last_row; j0 += kTile) {
    __syncthreads();
    StageTile(qkv, d, b, h, kKey, j0, k_s);
    StageTile(qkv, d, b, h, kValue, j0, v_s);
    __syncthreads();
    if (!active || j0 > i) continue;
    const int64_t j = j0 + lane;
    float ds = 0.0f;
    if (j <= i) {
      const float p = expf(Dot(q_s[warp], k_s[lane], d.head_dim) * d.scale - row_lse);
      const float dp = Dot(do_s[warp], v_s[lane], d.head_dim);
      ds = p * (dp - delta);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      const float ds_j = __shfl_sync(kFullMask, ds, jj);
#pragma unroll
      for (int r = 0; r < kDimsPerLane; ++r) {
        const int e = lane + r * kWarp;
        if (e < d.head_dim) dq[r] += ds_j * k_s[jj][e];
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < kDimsPerLane; ++r) {
    const int e = lane + r * kWarp;
    if (e < d.head_dim) Store(dqkv + d.Qkv(b, i, kQuery, h, e), dq[r] * d.scale);
  }
}

// Block (key tile, head, batch); warp w handles key row j = tile * 8 + w and
// writes dV_j = sum_{i >= j} P_ij dO_i and dK_j = scale sum_{i >= j} dS_ij Q_i.
template <typename T>
__global__ void __launch_bounds__(kBackwardRows* kWarp)
    FlashBackwardKeyValueKernel(const T* __restrict__ qkv, const T* __restrict__ out,
                                const float* __restrict__ lse, const T* __restrict__ dout,
                                T* __restrict__ dqkv, Dims d) {
  __shared__ float q_s[kTile][kPaddedD];
  __shared__ float do_s[kTile][kPaddedD];
  __shared__ float k_s[kBackwardRows][kMaxD];
  __shared__ float v_s[kBackwardRows][kMaxD];
  __shared__ float lse_s[kTile];
  __shared__ float delta_s[kTile];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t key0 = static_cast<int64_t>(blockIdx.x) * kBackwardRows;
  const int64_t j = key0 + warp;
  const bool active = j < d.seq;
  if (active) {
    for (int e = lane; e < d.head_dim; e += kWarp) {
      k_s[warp][e] = Load(qkv + d.Qkv(b, j, kKey, h, e));
      v_s[warp][e] = Load(qkv + d.Qkv(b, j, kValue, h, e));
    }
  }
  float dk[kDimsPerLane] = {};
  float dv[kDimsPerLane] = {};
  // Query tiles from the one holding key0 (earlier queries see none of these
  // keys) to the end.
  for (int64_t i0 = key0 / kTile * kTile; i0 < d.seq; i0 += kTile) {
    __syncthreads();
    StageTile(qkv, d, b, h, kQuery, i0, q_s);
    for (int idx = threadIdx.x; idx < kTile * d.head_dim; idx += blockDim.x) {
      const int r = idx / d.head_dim, e = idx % d.head_dim;
      const int64_t t = i0 + r;
      do_s[r][e] = t < d.seq ? Load(dout + d.Out(b, t, h, e)) : 0.0f;
    }
    __syncthreads();
    // Delta and lse of the staged queries: warp w does queries w * 4 .. w * 4 + 3.
    constexpr int kQueriesPerWarp = kTile / kBackwardRows;
    for (int q = warp * kQueriesPerWarp; q < (warp + 1) * kQueriesPerWarp; ++q) {
      const int64_t t = i0 + q;
      float partial = 0.0f;
      if (t < d.seq) {
        for (int e = lane; e < d.head_dim; e += kWarp) {
          partial += do_s[q][e] * Load(out + d.Out(b, t, h, e));
        }
      }
      const float delta = WarpSum(partial);
      if (lane == 0) {
        delta_s[q] = delta;
        lse_s[q] = t < d.seq ? lse[d.Lse(b, h, t)] : 0.0f;
      }
    }
    __syncthreads();
    if (!active) continue;
    const int64_t i = i0 + lane;
    float p = 0.0f, ds = 0.0f;
    if (i >= j && i < d.seq) {  // causal: query i sees key j
      p = expf(Dot(q_s[lane], k_s[warp], d.head_dim) * d.scale - lse_s[lane]);
      const float dp = Dot(do_s[lane], v_s[warp], d.head_dim);
      ds = p * (dp - delta_s[lane]);
    }
    for (int ii = 0; ii < kTile; ++ii) {
      const float p_i = __shfl_sync(kFullMask, p, ii);
      const float ds_i = __shfl_sync(kFullMask, ds, ii);
#pragma unroll
      for (int r = 0; r < kDimsPerLane; ++r) {
        const int e = lane + r * kWarp;
        if (e < d.head_dim) {
          dv[r] += p_i * do_s[ii][e];
          dk[r] += ds_i * q_s[ii][e];
        }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < kDimsPerLane; ++r) {
    const int e = lane + r * kWarp;
    if (e < d.head_dim) {
      Store(dqkv + d.Qkv(b, j, kKey, h, e), dk[r] * d.scale);
      Store(dqkv + d.Qkv(b, j, kValue, h, e), dv[r]);
    }
  }
}

// What the kernels need beyond attention_shape's checks, and their Dims.
absl::StatusOr<Dims> KernelDims(absl::string_view op, const AttentionShape& s) {
  if (s.head_dim > kMaxFlashHeadDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": head_dim ", s.head_dim, " exceeds the fallback kernel's ", kMaxFlashHeadDim));
  }
  constexpr int64_t kMaxGridYZ = 65535;
  if (s.heads > kMaxGridYZ || s.batch > kMaxGridYZ) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": num_heads ", s.heads, " or batch ",
                                                   s.batch, " exceeds CUDA's grid limit ",
                                                   kMaxGridYZ));
  }
  return Dims{.seq = s.seq,
              .heads = s.heads,
              .head_dim = static_cast<int>(s.head_dim),
              .channels = s.channels(),
              .scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim))};
}

dim3 Grid(const AttentionShape& s, int rows_per_block) {
  return dim3(BlocksFor(s.seq, rows_per_block), static_cast<unsigned>(s.heads),
              static_cast<unsigned>(s.batch));
}

}  // namespace

absl::Status FlashAttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                   const Tensor& out, const Tensor& lse) {
  constexpr absl::string_view kOp = "FlashAttentionForward";
  ASSIGN_OR_RETURN(const AttentionShape s,
                   CheckAttentionForwardArgs(kOp, qkv, num_heads, out, lse));
  ASSIGN_OR_RETURN(const Dims d, KernelDims(kOp, s));
  if (s.batch * s.seq == 0) return absl::OkStatus();
  return DispatchFloatStorage(qkv.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    FlashForwardKernel<T><<<Grid(s, kForwardRows), kForwardRows * kWarp, 0, stream>>>(
        static_cast<const T*>(qkv.raw_data()), static_cast<T*>(out.raw_data()), lse.data<float>(),
        d);
    return LaunchStatus(kOp);
  });
}

absl::Status FlashAttentionBackward(cudaStream_t stream, const Tensor& qkv, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, int num_heads,
                                    const Tensor& dqkv) {
  constexpr absl::string_view kOp = "FlashAttentionBackward";
  ASSIGN_OR_RETURN(const AttentionShape s,
                   CheckAttentionBackwardArgs(kOp, qkv, out, lse, dout, num_heads, dqkv));
  ASSIGN_OR_RETURN(const Dims d, KernelDims(kOp, s));
  if (s.batch * s.seq == 0) return absl::OkStatus();
  return DispatchFloatStorage(qkv.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    const T* pqkv = static_cast<const T*>(qkv.raw_data());
    const T* pout = static_cast<const T*>(out.raw_data());
    const T* pdout = static_cast<const T*>(dout.raw_data());
    T* pdqkv = static_cast<T*>(dqkv.raw_data());
    // The two kernels write disjoint thirds of dqkv (dQ; dK and dV).
    FlashBackwardQueryKernel<T><<<Grid(s, kBackwardRows), kBackwardRows * kWarp, 0, stream>>>(
        pqkv, pout, lse.data<float>(), pdout, pdqkv, d);
    RETURN_IF_ERROR(LaunchStatus(kOp));
    FlashBackwardKeyValueKernel<T><<<Grid(s, kBackwardRows), kBackwardRows * kWarp, 0, stream>>>(
        pqkv, pout, lse.data<float>(), pdout, pdqkv, d);
    return LaunchStatus(kOp);
  });
}

}  // namespace trident::cuda
