#include "core/cuda/ops/layer_norm.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/row_kernels.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

// ---------------------------------------------------------------------------
// Row kernels: block `blockIdx.x` owns one row of `cols` elements, seen as
// cols / kWidth chunks; thread t handles chunks t, t + blockDim.x, ... in every
// pass over the row. Because each pass uses that same mapping, a thread only
// reads back elements it wrote itself, which is what makes the in-place forms
// (sum = a, y = x, dx = dy) safe; the barriers inside BlockReduce separate the
// reading passes from the writing one.
// ---------------------------------------------------------------------------

// y = LayerNorm(x) with x = a, or, when b is given, x = sum = a + b (stored
// rounded to T, and the statistics are those of the stored values, as the
// unfused Add then LayerNormForward would see them).
template <typename T, int kWidth>
__global__ void LayerNormForwardKernel(const T* a, const T* b, T* sum, const T* gamma,
                                       const T* beta, float epsilon, int64_t cols, T* y,
                                       float* mean, float* rstd) {
  __shared__ float scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const int64_t chunks = cols / kWidth;
  const float inv_cols = 1.0f / static_cast<float>(cols);

  // Pass 1: the row sum (and the residual add when fused).
  const T* x = a + row * cols;
  float total = 0.0f;
  if (b == nullptr) {
    for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
      const Pack<T, kWidth> px = LoadPack<T, kWidth>(x + k * kWidth);
      for (int i = 0; i < kWidth; ++i) total += Load(&px.v[i]);
    }
  } else {
    const T* br = b + row * cols;
    T* sr = sum + row * cols;
    for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
      const Pack<T, kWidth> pa = LoadPack<T, kWidth>(x + k * kWidth);
      const Pack<T, kWidth> pb = LoadPack<T, kWidth>(br + k * kWidth);
      Pack<T, kWidth> ps;
      for (int i = 0; i < kWidth; ++i) {
        Store(&ps.v[i], __fadd_rn(Load(&pa.v[i]), Load(&pb.v[i])));
        total += Load(&ps.v[i]);
      }
      StorePack<T, kWidth>(sr + k * kWidth, ps);
    }
    x = sr;  // Later passes read the stored sum (this thread's own chunks).
  }
  const float m = BlockReduce(total, SumOp{}, 0.0f, scratch) * inv_cols;

  // Pass 2: the biased variance around the mean (two-pass, as the CPU twin).
  float squares = 0.0f;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    const Pack<T, kWidth> px = LoadPack<T, kWidth>(x + k * kWidth);
    for (int i = 0; i < kWidth; ++i) {
      const float d = Load(&px.v[i]) - m;
      squares += d * d;
    }
  }
  const float var = BlockReduce(squares, SumOp{}, 0.0f, scratch) * inv_cols;
  const float s = 1.0f / sqrtf(var + epsilon);

  // Pass 3: normalise, scale, shift.
  T* yr = y + row * cols;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    const Pack<T, kWidth> px = LoadPack<T, kWidth>(x + k * kWidth);
    const Pack<T, kWidth> pg = LoadPack<T, kWidth>(gamma + k * kWidth);
    const Pack<T, kWidth> pb = LoadPack<T, kWidth>(beta + k * kWidth);
    Pack<T, kWidth> out;
    for (int i = 0; i < kWidth; ++i) {
      Store(&out.v[i], (Load(&px.v[i]) - m) * s * Load(&pg.v[i]) + Load(&pb.v[i]));
    }
    StorePack<T, kWidth>(yr + k * kWidth, out);
  }
  if (threadIdx.x == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

// dx of one row: with g = dy * gamma and xhat = (x - mean) * rstd,
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))  [+ d_residual when given].
template <typename T, int kWidth>
__global__ void LayerNormBackwardInputKernel(const T* x, const T* gamma, const float* mean,
                                             const float* rstd, const T* dy, const T* d_residual,
                                             int64_t cols, T* dx) {
  __shared__ float scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const int64_t chunks = cols / kWidth;
  const float inv_cols = 1.0f / static_cast<float>(cols);
  const T* xr = x + row * cols;
  const T* dyr = dy + row * cols;
  const float m = mean[row];
  const float s = rstd[row];

  // Pass 1: the two row means the gradient needs.
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    const Pack<T, kWidth> px = LoadPack<T, kWidth>(xr + k * kWidth);
    const Pack<T, kWidth> pdy = LoadPack<T, kWidth>(dyr + k * kWidth);
    const Pack<T, kWidth> pg = LoadPack<T, kWidth>(gamma + k * kWidth);
    for (int i = 0; i < kWidth; ++i) {
      const float g = Load(&pdy.v[i]) * Load(&pg.v[i]);
      sum_g += g;
      sum_gx += g * ((Load(&px.v[i]) - m) * s);
    }
  }
  const float mean_g = BlockReduce(sum_g, SumOp{}, 0.0f, scratch) * inv_cols;
  const float mean_gx = BlockReduce(sum_gx, SumOp{}, 0.0f, scratch) * inv_cols;

  // Pass 2: dx (may overwrite dy or d_residual: this thread's chunks only,
  // after every thread finished pass 1).
  const T* rr = d_residual == nullptr ? nullptr : d_residual + row * cols;
  T* dxr = dx + row * cols;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    const Pack<T, kWidth> px = LoadPack<T, kWidth>(xr + k * kWidth);
    const Pack<T, kWidth> pdy = LoadPack<T, kWidth>(dyr + k * kWidth);
    const Pack<T, kWidth> pg = LoadPack<T, kWidth>(gamma + k * kWidth);
    Pack<T, kWidth> out;
    if (rr == nullptr) {
      for (int i = 0; i < kWidth; ++i) {
        const float xhat = (Load(&px.v[i]) - m) * s;
        Store(&out.v[i], s * (Load(&pdy.v[i]) * Load(&pg.v[i]) - mean_g - xhat * mean_gx));
      }
    } else {
      const Pack<T, kWidth> pr = LoadPack<T, kWidth>(rr + k * kWidth);
      for (int i = 0; i < kWidth; ++i) {
        const float xhat = (Load(&px.v[i]) - m) * s;
        const float through_norm = s * (Load(&pdy.v[i]) * Load(&pg.v[i]) - mean_g - xhat * mean_gx);
        // __fadd_rn is never contracted into an FMA with the product above:
        // the normalised part is rounded to fp32 before the add, as in the
        // unfused LayerNormBackwardInput + Add.
        Store(&out.v[i], __fadd_rn(through_norm, Load(&pr.v[i])));
      }
    }
    StorePack<T, kWidth>(dxr + k * kWidth, out);
  }
}

// ---------------------------------------------------------------------------
// Weight gradients, deterministic without atomics. Pass 1: block (x, y) sums
// columns [32x, 32x + 32) over rows [y * rows_per_block, ...) into fp32
// partials (each of 8 row lanes sums every 8th row in order, then lane sums
// are added in lane order). Pass 2: one thread per column adds the partials in
// row-range order (in double, as the CPU twin's column sums) into dgamma/dbeta.
// The split depends only on the shape, so results repeat bit for bit.
// ---------------------------------------------------------------------------

constexpr int kTileColumns = 32;  // One warp across consecutive columns: coalesced rows.
constexpr int kTileRowLanes = 8;  // Threads down the rows of a tile.
constexpr int64_t kRowsPerPartial = 64;
constexpr int64_t kMaxGridY = 65535;

template <typename T>
__global__ void LayerNormWeightPartialsKernel(const T* x, const float* mean, const float* rstd,
                                              const T* dy, int64_t rows, int64_t cols,
                                              int64_t rows_per_block, float* partial_gamma,
                                              float* partial_beta) {
  __shared__ float lane_gamma[kTileRowLanes][kTileColumns];
  __shared__ float lane_beta[kTileRowLanes][kTileColumns];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kTileColumns + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_block;
  const int64_t r1 = r0 + rows_per_block < rows ? r0 + rows_per_block : rows;
  float g = 0.0f, b = 0.0f;
  if (c < cols) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kTileRowLanes) {
      const float d = Load(dy + r * cols + c);
      g += d * ((Load(x + r * cols + c) - mean[r]) * rstd[r]);
      b += d;
    }
  }
  lane_gamma[threadIdx.y][threadIdx.x] = g;
  lane_beta[threadIdx.y][threadIdx.x] = b;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float tg = 0.0f, tb = 0.0f;
    for (int lane = 0; lane < kTileRowLanes; ++lane) {
      tg += lane_gamma[lane][threadIdx.x];
      tb += lane_beta[lane][threadIdx.x];
    }
    partial_gamma[blockIdx.y * cols + c] = tg;
    partial_beta[blockIdx.y * cols + c] = tb;
  }
}

template <typename G>
__global__ void LayerNormWeightTotalsKernel(const float* partial_gamma, const float* partial_beta,
                                            int64_t partials, int64_t cols, G* dgamma, G* dbeta) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double tg = 0.0, tb = 0.0;
  for (int64_t p = 0; p < partials; ++p) {
    tg += partial_gamma[p * cols + c];
    tb += partial_beta[p * cols + c];
  }
  Store(dgamma + c, Load(dgamma + c) + static_cast<float>(tg));
  Store(dbeta + c, Load(dbeta + c) + static_cast<float>(tb));
}

// ---------------------------------------------------------------------------
// Host side.
// ---------------------------------------------------------------------------

// Rows and width of a LayerNorm operand [..., C].
struct RowShape {
  int64_t rows = 0;
  int64_t cols = 0;
};

// `x` as rows of C: a float operand with at least one dim, C > 0, and a row
// count one grid dimension can hold.
absl::StatusOr<RowShape> CheckRows(absl::string_view op, absl::string_view name, const Tensor& x) {
  RETURN_IF_ERROR(CheckFloatOperand(op, name, x));
  if (x.ndim() < 1 || x.dim(-1) <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": ", name, " has shape ", ShapeToString(x.shape()), ", expected [..., C] with C > 0"));
  }
  const RowShape shape{x.numel() / x.dim(-1), x.dim(-1)};
  if (shape.rows > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " has ", shape.rows,
                                                   " rows, more than one launch takes (2^31 - 1)"));
  }
  return shape;
}

// A [C] vector (gamma, beta) of x's dtype (x named x_name).
absl::Status CheckColumnVector(absl::string_view op, absl::string_view name, const Tensor& t,
                               absl::string_view x_name, const Tensor& x, int64_t cols) {
  RETURN_IF_ERROR(CheckFloatOperand(op, name, t));
  RETURN_IF_ERROR(CheckSameDType(op, name, t, x_name, x));
  return CheckShape(op, name, t, Shape{cols});
}

// An operand shaped and typed as x (y, sum, dy, dx, ...).
absl::Status CheckLikeX(absl::string_view op, absl::string_view name, const Tensor& t,
                        absl::string_view x_name, const Tensor& x) {
  RETURN_IF_ERROR(CheckFloatOperand(op, name, t));
  RETURN_IF_ERROR(CheckSameDType(op, name, t, x_name, x));
  return CheckShape(op, name, t, x.shape());
}

// mean or rstd: one fp32 per row.
absl::Status CheckRowStatistic(absl::string_view op, absl::string_view name, const Tensor& t,
                               int64_t rows) {
  RETURN_IF_ERROR(CheckOperand(op, name, t, DType::kFloat32));
  return CheckNumel(op, name, t, rows);
}

// The forward of LayerNorm (b undefined) or of the fused add + LayerNorm.
absl::Status ForwardImpl(absl::string_view op, cudaStream_t stream, const Tensor& a,
                         const Tensor& b, const Tensor& gamma, const Tensor& beta, float epsilon,
                         const Tensor& sum, const Tensor& y, const Tensor& mean,
                         const Tensor& rstd) {
  const bool fused = b.defined() || sum.defined();
  const absl::string_view x_name = fused ? "a" : "x";
  ASSIGN_OR_RETURN(const RowShape shape, CheckRows(op, x_name, a));
  if (fused) {
    RETURN_IF_ERROR(CheckLikeX(op, "b", b, x_name, a));
    RETURN_IF_ERROR(CheckLikeX(op, "sum", sum, x_name, a));
  }
  RETURN_IF_ERROR(CheckColumnVector(op, "gamma", gamma, x_name, a, shape.cols));
  RETURN_IF_ERROR(CheckColumnVector(op, "beta", beta, x_name, a, shape.cols));
  RETURN_IF_ERROR(CheckLikeX(op, "y", y, x_name, a));
  RETURN_IF_ERROR(CheckRowStatistic(op, "mean", mean, shape.rows));
  RETURN_IF_ERROR(CheckRowStatistic(op, "rstd", rstd, shape.rows));
  if (!(epsilon >= 0.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": epsilon is ", epsilon, ", expected >= 0"));
  }
  if (fused) {
    RETURN_IF_ERROR(CheckOnOneCudaDevice(op, {{"a", a},
                                       {"b", b},
                                       {"gamma", gamma},
                                       {"beta", beta},
                                       {"sum", sum},
                                       {"y", y},
                                       {"mean", mean},
                                       {"rstd", rstd}}));
  } else {
    RETURN_IF_ERROR(CheckOnOneCudaDevice(
        op,
        {{"x", a}, {"gamma", gamma}, {"beta", beta}, {"y", y}, {"mean", mean}, {"rstd", rstd}}));
  }
  if (shape.rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(a.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* pb = fused ? Data<T>(b) : nullptr;
    T* ps = fused ? Data<T>(sum) : nullptr;
    const bool vector = CanUseVectorPacks<T>(
        shape.cols, {a.raw_data(), pb, ps, gamma.raw_data(), beta.raw_data(), y.raw_data()});
    WithPackWidth<T>(vector, [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      LayerNormForwardKernel<T, kWidth>
          <<<static_cast<unsigned>(shape.rows), ThreadsForRow(shape.cols / kWidth), 0, stream>>>(
              Data<T>(a), pb, ps, Data<T>(gamma), Data<T>(beta), epsilon, shape.cols, Data<T>(y),
              mean.data<float>(), rstd.data<float>());
    });
    return LaunchStatus(op);
  });
}

// The input gradient of LayerNorm (d_residual undefined) or of the fused form.
absl::Status BackwardInputImpl(absl::string_view op, cudaStream_t stream, const Tensor& x,
                               const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                               const Tensor& dy, const Tensor& d_residual, const Tensor& dx) {
  ASSIGN_OR_RETURN(const RowShape shape, CheckRows(op, "x", x));
  RETURN_IF_ERROR(CheckColumnVector(op, "gamma", gamma, "x", x, shape.cols));
  RETURN_IF_ERROR(CheckRowStatistic(op, "mean", mean, shape.rows));
  RETURN_IF_ERROR(CheckRowStatistic(op, "rstd", rstd, shape.rows));
  RETURN_IF_ERROR(CheckLikeX(op, "dy", dy, "x", x));
  const bool fused = d_residual.defined();
  if (fused) RETURN_IF_ERROR(CheckLikeX(op, "d_residual", d_residual, "x", x));
  RETURN_IF_ERROR(CheckLikeX(op, "dx", dx, "x", x));
  if (fused) {
    RETURN_IF_ERROR(CheckOnOneCudaDevice(op, {{"x", x},
                                       {"gamma", gamma},
                                       {"mean", mean},
                                       {"rstd", rstd},
                                       {"dy", dy},
                                       {"d_residual", d_residual},
                                       {"dx", dx}}));
  } else {
    RETURN_IF_ERROR(CheckOnOneCudaDevice(
        op, {{"x", x}, {"gamma", gamma}, {"mean", mean}, {"rstd", rstd}, {"dy", dy}, {"dx", dx}}));
  }
  if (shape.rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(x.dtype(), op, [&](auto zero) {
    using T = decltype(zero);
    const T* pr = fused ? Data<T>(d_residual) : nullptr;
    const bool vector = CanUseVectorPacks<T>(
        shape.cols, {x.raw_data(), gamma.raw_data(), dy.raw_data(), pr, dx.raw_data()});
    WithPackWidth<T>(vector, [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      LayerNormBackwardInputKernel<T, kWidth>
          <<<static_cast<unsigned>(shape.rows), ThreadsForRow(shape.cols / kWidth), 0, stream>>>(
              Data<T>(x), Data<T>(gamma), mean.data<float>(), rstd.data<float>(), Data<T>(dy), pr,
              shape.cols, Data<T>(dx));
    });
    return LaunchStatus(op);
  });
}

}  // namespace

absl::Status LayerNormForward(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, float epsilon, const Tensor& y,
                              const Tensor& mean, const Tensor& rstd) {
  return ForwardImpl("LayerNormForward", stream, x, Tensor(), gamma, beta, epsilon, Tensor(), y,
                     mean, rstd);
}

absl::Status AddLayerNormForward(cudaStream_t stream, const Tensor& a, const Tensor& b,
                                 const Tensor& gamma, const Tensor& beta, float epsilon,
                                 const Tensor& sum, const Tensor& y, const Tensor& mean,
                                 const Tensor& rstd) {
  constexpr absl::string_view kOp = "AddLayerNormForward";
  if (!b.defined() || !sum.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": ", b.defined() ? "sum" : "b", " is undefined"));
  }
  return ForwardImpl(kOp, stream, a, b, gamma, beta, epsilon, sum, y, mean, rstd);
}

absl::Status LayerNormBackwardInput(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                                    const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                    const Tensor& dx) {
  return BackwardInputImpl("LayerNormBackwardInput", stream, x, gamma, mean, rstd, dy, Tensor(),
                           dx);
}

absl::Status AddLayerNormBackwardInput(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                                       const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                       const Tensor& d_residual, const Tensor& dx) {
  constexpr absl::string_view kOp = "AddLayerNormBackwardInput";
  if (!d_residual.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": d_residual is undefined"));
  }
  return BackwardInputImpl(kOp, stream, x, gamma, mean, rstd, dy, d_residual, dx);
}

absl::Status LayerNormBackwardWeights(cudaStream_t stream, const Tensor& x, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                                      const Tensor& dbeta) {
  constexpr absl::string_view kOp = "LayerNormBackwardWeights";
  ASSIGN_OR_RETURN(const RowShape shape, CheckRows(kOp, "x", x));
  RETURN_IF_ERROR(CheckRowStatistic(kOp, "mean", mean, shape.rows));
  RETURN_IF_ERROR(CheckRowStatistic(kOp, "rstd", rstd, shape.rows));
  RETURN_IF_ERROR(CheckLikeX(kOp, "dy", dy, "x", x));
  RETURN_IF_ERROR(CheckFloatOperand(kOp, "dgamma", dgamma));
  RETURN_IF_ERROR(CheckShape(kOp, "dgamma", dgamma, Shape{shape.cols}));
  RETURN_IF_ERROR(CheckFloatOperand(kOp, "dbeta", dbeta));
  RETURN_IF_ERROR(CheckSameDType(kOp, "dbeta", dbeta, "dgamma", dgamma));
  RETURN_IF_ERROR(CheckShape(kOp, "dbeta", dbeta, Shape{shape.cols}));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"x", x},
                                      {"mean", mean},
                                      {"rstd", rstd},
                                      {"dy", dy},
                                      {"dgamma", dgamma},
                                      {"dbeta", dbeta}}));
  if (shape.rows == 0) return absl::OkStatus();  // Nothing to add.

  // A split of the rows into at most kMaxGridY ranges, fixed by the shape.
  int64_t rows_per_block = kRowsPerPartial;
  if ((shape.rows + rows_per_block - 1) / rows_per_block > kMaxGridY) {
    rows_per_block = (shape.rows + kMaxGridY - 1) / kMaxGridY;
  }
  const int64_t partials = (shape.rows + rows_per_block - 1) / rows_per_block;
  // Scratch for both partial sums, stream-ordered (no host synchronisation).
  float* scratch = nullptr;
  const size_t scratch_bytes = 2 * static_cast<size_t>(partials * shape.cols) * sizeof(float);
  if (const cudaError_t e = cudaMallocAsync(&scratch, scratch_bytes, stream); e != cudaSuccess) {
    return absl::ResourceExhaustedError(
        absl::StrCat(kOp, ": scratch of ", scratch_bytes, " bytes: ", cudaGetErrorName(e)));
  }
  float* partial_gamma = scratch;
  float* partial_beta = scratch + partials * shape.cols;
  const absl::Status partials_launched = DispatchFloatStorage(x.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    const dim3 grid(BlocksFor(shape.cols, kTileColumns), static_cast<unsigned>(partials));
    const dim3 block(kTileColumns, kTileRowLanes);
    LayerNormWeightPartialsKernel<T><<<grid, block, 0, stream>>>(
        Data<T>(x), mean.data<float>(), rstd.data<float>(), Data<T>(dy), shape.rows, shape.cols,
        rows_per_block, partial_gamma, partial_beta);
    return LaunchStatus(kOp);
  });
  const absl::Status totals_launched =
      !partials_launched.ok() ? partials_launched
                              : DispatchFloatStorage(dgamma.dtype(), kOp, [&](auto zero) {
                                  using G = decltype(zero);
                                  constexpr int kThreads = 256;
                                  LayerNormWeightTotalsKernel<G>
                                      <<<BlocksFor(shape.cols, kThreads), kThreads, 0, stream>>>(
                                          partial_gamma, partial_beta, partials, shape.cols,
                                          Data<G>(dgamma), Data<G>(dbeta));
                                  return LaunchStatus(kOp);
                                });
  const cudaError_t freed = cudaFreeAsync(scratch, stream);
  if (!totals_launched.ok()) return totals_launched;
  if (freed != cudaSuccess) {
    return absl::UnavailableError(
        absl::StrCat(kOp, ": freeing scratch: ", cudaGetErrorName(freed)));
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
