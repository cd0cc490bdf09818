#include "core/cuda/host_sync.h"
#include "core/cuda/ops/cross_entropy.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/row_kernels.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

using ops::CrossEntropyOptions;

constexpr int kMaxRowThreads = 1024;
constexpr int kThreads = 256;

// The local column of target t, or -1 when the row is ignored or the target
// is another shard's id (or in this shard's padding). A target outside the
// vocabulary that is not the ignore index traps, as the CPU twin aborts.
// `o` is resolved (no -1 fields). Only callers with `report` print the
// target (one line per row, not one per thread).
__device__ int64_t TargetColumn(int32_t t, const CrossEntropyOptions& o, const char* op,
                                bool report) {
  if (t == o.ignore_index) return -1;
  if (t < 0 || t >= o.vocab_size) {
    if (report) {
      printf("%s: target %d is outside the vocabulary [0, %lld) and is not the ignore index %d\n",
             op, t, static_cast<long long>(o.vocab_size), o.ignore_index);
    }
    __trap();
  }
  const int64_t col = static_cast<int64_t>(t) - o.vocab_start;
  return (col >= 0 && col < o.valid_columns) ? col : -1;
}

// --- Online softmax statistics: (m, s) = (max, sum of exp(x - max)). ---

// Adds element v to a thread's running (m, s). An element of -inf adds
// nothing (and must not form -inf - -inf); a NaN makes s NaN.
__device__ __forceinline__ void OnlineAdd(float v, float& m, float& s) {
  if (v > m) {
    s = s * expf(m - v) + 1.0f;
    m = v;
  } else if (v != -INFINITY) {
    s += expf(v - m);
  }
}

// Merges (m2, s2) into (m, s); either may be empty (-inf, 0).
__device__ __forceinline__ void OnlineMerge(float& m, float& s, float m2, float s2) {
  const float mx = m > m2 ? m : m2;
  if (mx == -INFINITY) return;  // Both empty.
  s = s * expf(m - mx) + s2 * expf(m2 - mx);
  m = mx;
}

// (m, s) over the block, in a fixed order; every thread gets the result.
__device__ void BlockOnlineReduce(float& m, float& s, float* scratch_m, float* scratch_s) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    OnlineMerge(m, s, __shfl_xor_sync(kFullMask, m, offset), __shfl_xor_sync(kFullMask, s, offset));
  }
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();
  if (lane == 0) {
    scratch_m[warp] = m;
    scratch_s[warp] = s;
  }
  __syncthreads();
  m = lane < warps ? scratch_m[lane] : -INFINITY;
  s = lane < warps ? scratch_s[lane] : 0.0f;
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    OnlineMerge(m, s, __shfl_xor_sync(kFullMask, m, offset), __shfl_xor_sync(kFullMask, s, offset));
  }
}

// --- Row kernels: block r owns row r of logits [N, cols]; thread t handles
// chunks t, t + blockDim.x, ... of kWidth elements; element j counts when
// j < valid_columns. ---

template <typename T, int kWidth>
__global__ void RowMaxKernel(const T* logits, int64_t cols, CrossEntropyOptions o, float* row_max) {
  __shared__ float scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const T* lr = logits + row * cols;
  float m = -INFINITY;
  for (int64_t k = threadIdx.x; k < cols / kWidth; k += blockDim.x) {
    const Pack<T, kWidth> p = LoadPack<T, kWidth>(lr + k * kWidth);
    for (int e = 0; e < kWidth; ++e) {
      if (k * kWidth + e < o.valid_columns) m = MaxOp{}(m, Load(&p.v[e]));
    }
  }
  m = BlockReduce(m, MaxOp{}, -INFINITY, scratch);
  if (threadIdx.x == 0) row_max[row] = m;
}

template <typename T, int kWidth>
__global__ void RowSumExpKernel(const T* logits, const float* row_max, int64_t cols,
                                CrossEntropyOptions o, float* sum_exp) {
  __shared__ float scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const T* lr = logits + row * cols;
  const float m = row_max[row];
  float s = 0.0f;
  for (int64_t k = threadIdx.x; k < cols / kWidth; k += blockDim.x) {
    const Pack<T, kWidth> p = LoadPack<T, kWidth>(lr + k * kWidth);
    for (int e = 0; e < kWidth; ++e) {
      if (k * kWidth + e < o.valid_columns) s += expf(Load(&p.v[e]) - m);
    }
  }
  s = BlockReduce(s, SumOp{}, 0.0f, scratch);
  if (threadIdx.x == 0) sum_exp[row] = s;
}

// One thread per row.
template <typename T>
__global__ void TargetLogitKernel(const T* logits, const int32_t* targets, int64_t rows,
                                  int64_t cols, CrossEntropyOptions o, float* target_logit) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  const int64_t col = TargetColumn(targets[row], o, "TargetLogit", true);
  target_logit[row] = col >= 0 ? Load(logits + row * cols + col) : 0.0f;
}

// The fused forward: one pass over the row for (max, sum exp), then thread 0
// forms logsumexp and the loss (in double, as the CPU twin).
template <typename T, int kWidth>
__global__ void CrossEntropyForwardKernel(const T* logits, const int32_t* targets, int64_t cols,
                                          CrossEntropyOptions o, float* losses, float* logsumexp) {
  __shared__ float scratch_m[kWarpSize], scratch_s[kWarpSize];
  const int64_t row = blockIdx.x;
  const T* lr = logits + row * cols;
  float m = -INFINITY, s = 0.0f;
  for (int64_t k = threadIdx.x; k < cols / kWidth; k += blockDim.x) {
    const Pack<T, kWidth> p = LoadPack<T, kWidth>(lr + k * kWidth);
    for (int e = 0; e < kWidth; ++e) {
      if (k * kWidth + e < o.valid_columns) OnlineAdd(Load(&p.v[e]), m, s);
    }
  }
  BlockOnlineReduce(m, s, scratch_m, scratch_s);
  if (threadIdx.x == 0) {
    const double lse = static_cast<double>(m) + log(static_cast<double>(s));
    logsumexp[row] = static_cast<float>(lse);
    const int64_t col = TargetColumn(targets[row], o, "CrossEntropyForward", true);
    losses[row] = col >= 0 ? static_cast<float>(lse - Load(lr + col)) : 0.0f;
  }
}

// The fused backward; each thread reads then writes only its own chunks, so
// dlogits may be logits.
template <typename T, int kWidth>
__global__ void CrossEntropyBackwardKernel(const T* logits, const int32_t* targets,
                                           const float* logsumexp, float grad_scale, int64_t cols,
                                           CrossEntropyOptions o, T* dlogits) {
  const int64_t row = blockIdx.x;
  const T* lr = logits + row * cols;
  T* dr = dlogits + row * cols;
  const int32_t target = targets[row];
  const bool ignored = target == o.ignore_index;
  const int64_t col =
      TargetColumn(target, o, "CrossEntropyBackward", threadIdx.x == 0);  // -1 when ignored.
  const float lse = logsumexp[row];
  for (int64_t k = threadIdx.x; k < cols / kWidth; k += blockDim.x) {
    const Pack<T, kWidth> p = LoadPack<T, kWidth>(lr + k * kWidth);
    Pack<T, kWidth> out;
    for (int e = 0; e < kWidth; ++e) {
      const int64_t j = k * kWidth + e;
      float v = 0.0f;
      if (!ignored && j < o.valid_columns) {
        // __fmul_rn: not contracted with the subtraction below, as on the CPU.
        v = __fmul_rn(grad_scale, expf(Load(&p.v[e]) - lse));
        if (j == col) v -= grad_scale;
      }
      Store(&out.v[e], v);
    }
    StorePack<T, kWidth>(dr + k * kWidth, out);
  }
}

// One thread per row.
__global__ void CombineCrossEntropyPartsKernel(const float* row_max, const float* sum_exp,
                                               const float* target_logit, const int32_t* targets,
                                               int64_t rows, int32_t ignore_index, float* losses,
                                               float* logsumexp) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  const double lse = static_cast<double>(row_max[row]) + log(static_cast<double>(sum_exp[row]));
  logsumexp[row] = static_cast<float>(lse);
  losses[row] = targets[row] == ignore_index ? 0.0f : static_cast<float>(lse - target_logit[row]);
}

// One block counts every target (no atomics): per-thread counts, then a warp
// and block reduction in integers.
__global__ void CountTargetsKernel(const int32_t* targets, int64_t n, int32_t ignore_index,
                                   long long* count) {
  __shared__ long long scratch[kWarpSize];
  long long c = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) c += targets[i] != ignore_index;
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    c += __shfl_xor_sync(kFullMask, c, offset);
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) scratch[warp] = c;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long total = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / kWarpSize); ++w) total += scratch[w];
    *count = total;
  }
}

// --- Host side. ---

absl::Status Refuse(absl::string_view op, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what));
}

// logits [N, V] (a float operand) and the options with -1 fields resolved as
// core/ops/cross_entropy.cc resolves them.
absl::StatusOr<CrossEntropyOptions> CheckLogits(absl::string_view op, const Tensor& logits,
                                                const CrossEntropyOptions& options) {
  RETURN_IF_ERROR(CheckFloatOperand(op, "logits", logits));
  if (logits.ndim() != 2) {
    return Refuse(
        op, absl::StrCat("logits has shape ", ShapeToString(logits.shape()), ", expected [N, V]"));
  }
  if (logits.dim(0) > std::numeric_limits<int32_t>::max()) {
    return Refuse(op, absl::StrCat("logits has ", logits.dim(0),
                                   " rows, more than one launch takes (2^31 - 1)"));
  }
  const int64_t columns = logits.dim(1);
  CrossEntropyOptions o = options;
  if (o.valid_columns == -1) o.valid_columns = columns;
  if (o.valid_columns < 0 || o.valid_columns > columns) {
    return Refuse(op,
                  absl::StrCat("options.valid_columns is ", options.valid_columns,
                               ", expected -1 or in [0, ", columns, "] (the columns of logits)"));
  }
  if (o.vocab_start < 0) {
    return Refuse(op, absl::StrCat("options.vocab_start is ", o.vocab_start, ", expected >= 0"));
  }
  if (o.vocab_size == -1) o.vocab_size = o.vocab_start + o.valid_columns;
  if (o.vocab_size < o.vocab_start + o.valid_columns) {
    return Refuse(op, absl::StrCat("options.vocab_size is ", options.vocab_size,
                                   ", expected -1 or at least vocab_start + valid_columns = ",
                                   o.vocab_start + o.valid_columns));
  }
  return o;
}

absl::Status CheckTargets(absl::string_view op, const Tensor& targets, int64_t rows) {
  RETURN_IF_ERROR(CheckOperand(op, "targets", targets, DType::kInt32));
  return CheckNumel(op, "targets", targets, rows);
}

absl::Status CheckRowVector(absl::string_view op, absl::string_view name, const Tensor& t,
                            int64_t rows) {
  RETURN_IF_ERROR(CheckOperand(op, name, t, DType::kFloat32));
  return CheckNumel(op, name, t, rows);
}

}  // namespace

absl::Status RowMax(cudaStream_t stream, const Tensor& logits, const CrossEntropyOptions& options,
                    const Tensor& row_max) {
  constexpr absl::string_view kOp = "RowMax";
  ASSIGN_OR_RETURN(const CrossEntropyOptions o, CheckLogits(kOp, logits, options));
  if (o.valid_columns == 0) return Refuse(kOp, "no valid columns (options.valid_columns is 0)");
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  RETURN_IF_ERROR(CheckRowVector(kOp, "row_max", row_max, rows));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"logits", logits}, {"row_max", row_max}}));
  if (rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(logits.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    WithPackWidth<T>(CanUseVectorPacks<T>(cols, {logits.raw_data()}), [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      RowMaxKernel<T, kWidth>
          <<<static_cast<unsigned>(rows), ThreadsForRow(cols / kWidth, kMaxRowThreads), 0,
             stream>>>(Data<T>(logits), cols, o, row_max.data<float>());
    });
    return LaunchStatus(kOp);
  });
}

absl::Status RowSumExp(cudaStream_t stream, const Tensor& logits, const Tensor& row_max,
                       const CrossEntropyOptions& options, const Tensor& sum_exp) {
  constexpr absl::string_view kOp = "RowSumExp";
  ASSIGN_OR_RETURN(const CrossEntropyOptions o, CheckLogits(kOp, logits, options));
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  RETURN_IF_ERROR(CheckRowVector(kOp, "row_max", row_max, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "sum_exp", sum_exp, rows));
  RETURN_IF_ERROR(
      CheckOnOneCudaDevice(kOp, {{"logits", logits}, {"row_max", row_max}, {"sum_exp", sum_exp}}));
  if (rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(logits.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    WithPackWidth<T>(CanUseVectorPacks<T>(cols, {logits.raw_data()}), [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      RowSumExpKernel<T, kWidth>
          <<<static_cast<unsigned>(rows), ThreadsForRow(cols / kWidth, kMaxRowThreads), 0,
             stream>>>(Data<T>(logits), row_max.data<float>(), cols, o, sum_exp.data<float>());
    });
    return LaunchStatus(kOp);
  });
}

absl::Status TargetLogit(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                         const CrossEntropyOptions& options, const Tensor& target_logit) {
  constexpr absl::string_view kOp = "TargetLogit";
  ASSIGN_OR_RETURN(const CrossEntropyOptions o, CheckLogits(kOp, logits, options));
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  RETURN_IF_ERROR(CheckTargets(kOp, targets, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "target_logit", target_logit, rows));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(
      kOp, {{"logits", logits}, {"targets", targets}, {"target_logit", target_logit}}));
  if (rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(logits.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    TargetLogitKernel<T><<<BlocksFor(rows, kThreads), kThreads, 0, stream>>>(
        Data<T>(logits), targets.data<int32_t>(), rows, cols, o, target_logit.data<float>());
    return LaunchStatus(kOp);
  });
}

absl::Status CrossEntropyForward(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                                 const CrossEntropyOptions& options, const Tensor& losses,
                                 const Tensor& logsumexp) {
  constexpr absl::string_view kOp = "CrossEntropyForward";
  ASSIGN_OR_RETURN(const CrossEntropyOptions o, CheckLogits(kOp, logits, options));
  if (o.vocab_start != 0 || o.vocab_size != o.valid_columns) {
    return Refuse(kOp, absl::StrCat("needs logits over the whole vocabulary (options.vocab_start ",
                                    o.vocab_start, ", ", o.valid_columns,
                                    " valid columns of options.vocab_size ", o.vocab_size,
                                    "): compose the building blocks for a vocabulary shard"));
  }
  if (o.valid_columns == 0) return Refuse(kOp, "no valid columns (options.valid_columns is 0)");
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  RETURN_IF_ERROR(CheckTargets(kOp, targets, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "losses", losses, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "logsumexp", logsumexp, rows));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(
      kOp,
      {{"logits", logits}, {"targets", targets}, {"losses", losses}, {"logsumexp", logsumexp}}));
  if (rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(logits.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    WithPackWidth<T>(CanUseVectorPacks<T>(cols, {logits.raw_data()}), [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      CrossEntropyForwardKernel<T, kWidth>
          <<<static_cast<unsigned>(rows), ThreadsForRow(cols / kWidth, kMaxRowThreads), 0,
             stream>>>(Data<T>(logits), targets.data<int32_t>(), cols, o, losses.data<float>(),
                       logsumexp.data<float>());
    });
    return LaunchStatus(kOp);
  });
}

absl::Status CrossEntropyBackward(cudaStream_t stream, const Tensor& logits, const Tensor& targets,
                                  const Tensor& logsumexp, float grad_scale,
                                  const CrossEntropyOptions& options, const Tensor& dlogits) {
  constexpr absl::string_view kOp = "CrossEntropyBackward";
  ASSIGN_OR_RETURN(const CrossEntropyOptions o, CheckLogits(kOp, logits, options));
  const int64_t rows = logits.dim(0), cols = logits.dim(1);
  RETURN_IF_ERROR(CheckTargets(kOp, targets, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "logsumexp", logsumexp, rows));
  RETURN_IF_ERROR(CheckFloatOperand(kOp, "dlogits", dlogits));
  RETURN_IF_ERROR(CheckSameDType(kOp, "dlogits", dlogits, "logits", logits));
  RETURN_IF_ERROR(CheckShape(kOp, "dlogits", dlogits, logits.shape()));
  if (!std::isfinite(grad_scale)) {
    return Refuse(kOp, absl::StrCat("grad_scale is ", grad_scale, ", expected a finite value"));
  }
  RETURN_IF_ERROR(CheckOnOneCudaDevice(
      kOp,
      {{"logits", logits}, {"targets", targets}, {"logsumexp", logsumexp}, {"dlogits", dlogits}}));
  if (rows == 0) return absl::OkStatus();
  return DispatchFloatStorage(logits.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    const bool vector = CanUseVectorPacks<T>(cols, {logits.raw_data(), dlogits.raw_data()});
    WithPackWidth<T>(vector, [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      CrossEntropyBackwardKernel<T, kWidth>
          <<<static_cast<unsigned>(rows), ThreadsForRow(cols / kWidth, kMaxRowThreads), 0,
             stream>>>(Data<T>(logits), targets.data<int32_t>(), logsumexp.data<float>(),
                       grad_scale, cols, o, Data<T>(dlogits));
    });
    return LaunchStatus(kOp);
  });
}

absl::Status CombineCrossEntropyParts(cudaStream_t stream, const Tensor& row_max,
                                      const Tensor& sum_exp, const Tensor& target_logit,
                                      const Tensor& targets, int32_t ignore_index,
                                      const Tensor& losses, const Tensor& logsumexp) {
  constexpr absl::string_view kOp = "CombineCrossEntropyParts";
  RETURN_IF_ERROR(CheckOperand(kOp, "targets", targets, DType::kInt32));
  const int64_t rows = targets.numel();
  RETURN_IF_ERROR(CheckRowVector(kOp, "row_max", row_max, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "sum_exp", sum_exp, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "target_logit", target_logit, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "losses", losses, rows));
  RETURN_IF_ERROR(CheckRowVector(kOp, "logsumexp", logsumexp, rows));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"row_max", row_max},
                                      {"sum_exp", sum_exp},
                                      {"target_logit", target_logit},
                                      {"targets", targets},
                                      {"losses", losses},
                                      {"logsumexp", logsumexp}}));
  if (rows == 0) return absl::OkStatus();
  CombineCrossEntropyPartsKernel<<<BlocksFor(rows, kThreads), kThreads, 0, stream>>>(
      row_max.data<float>(), sum_exp.data<float>(), target_logit.data<float>(),
      targets.data<int32_t>(), rows, ignore_index, losses.data<float>(), logsumexp.data<float>());
  return LaunchStatus(kOp);
}

absl::StatusOr<int64_t> CountTargets(cudaStream_t stream, const Tensor& targets,
                                     int32_t ignore_index) {
  constexpr absl::string_view kOp = "CountTargets";
  RETURN_IF_ERROR(CheckOperand(kOp, "targets", targets, DType::kInt32));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"targets", targets}}));
  if (targets.numel() == 0) return int64_t{0};
  long long* device_count = nullptr;
  if (const cudaError_t e = cudaMallocAsync(&device_count, sizeof(long long), stream);
      e != cudaSuccess) {
    return absl::ResourceExhaustedError(
        absl::StrCat(kOp, ": scratch for the count: ", cudaGetErrorName(e)));
  }
  CountTargetsKernel<<<1, kMaxRowThreads, 0, stream>>>(targets.data<int32_t>(), targets.numel(),
                                                       ignore_index, device_count);
  absl::Status launched = LaunchStatus(kOp);
  long long count = 0;
  // The one host synchronisation of this file: the count is a host value.
  const cudaError_t copied = launched.ok() ? cudaMemcpyAsync(&count, device_count, sizeof(count),
                                                             cudaMemcpyDeviceToHost, stream)
                                           : cudaSuccess;
  const cudaError_t freed = cudaFreeAsync(device_count, stream);
  CountHostSync();
  const cudaError_t synced = cudaStreamSynchronize(stream);
  if (!launched.ok()) return launched;
  for (const cudaError_t e : {copied, freed, synced}) {
    if (e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat(kOp,
                                                 ": reading the count back: ", cudaGetErrorName(e),
                                                 " (", cudaGetErrorString(e), ")"));
    }
  }
  return static_cast<int64_t>(count);
}

}  // namespace trident::cuda
