#include "core/cuda/ops/elementwise.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/pack_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

constexpr int kThreads = 256;

// ---------------------------------------------------------------------------
// Kernels. One thread per pack of N elements (pack_io.cuh); `n` elements.

template <typename T, int N>
__global__ void FillKernel(T* x, int64_t n, float value) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float v[N];
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = value;
  StorePack<N>(x + start, count, v);
}

template <typename S, typename D, int N>
__global__ void ConvertKernel(const S* src, D* dst, int64_t n) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float v[N];
  LoadPack<N>(src + start, count, v);
  StorePack<N>(dst + start, count, v);
}

// out may alias a or b: each thread reads its elements before writing them.
template <typename T, int N>
__global__ void AddKernel(const T* a, const T* b, T* out, int64_t n) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float va[N], vb[N];
  LoadPack<N>(a + start, count, va);
  LoadPack<N>(b + start, count, vb);
#pragma unroll
  for (int k = 0; k < N; ++k) va[k] += vb[k];
  StorePack<N>(out + start, count, va);
}

template <typename X, typename Y, int N>
__global__ void AxpyKernel(float alpha, const X* x, Y* y, int64_t n) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float vx[N], vy[N];
  LoadPack<N>(x + start, count, vx);
  LoadPack<N>(y + start, count, vy);
#pragma unroll
  for (int k = 0; k < N; ++k) vy[k] += alpha * vx[k];
  StorePack<N>(y + start, count, vy);
}

template <typename T, int N>
__global__ void ScaleKernel(T* x, int64_t n, float alpha) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float v[N];
  LoadPack<N>(x + start, count, v);
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] *= alpha;
  StorePack<N>(x + start, count, v);
}

// out[i] = row[i % cols]. The column of the pack's first element is computed
// once; the following ones step it, wrapping at the row's end (a pack may span
// two rows when cols is not a multiple of N).
template <typename R, typename O, int N>
__global__ void BroadcastRowsKernel(const R* row, O* out, int64_t n, int64_t cols) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  int64_t c = start % cols;
  float v[N];
#pragma unroll
  for (int k = 0; k < N; ++k) {
    v[k] = k < count ? Load(row + c) : 0.0f;
    if (++c == cols) c = 0;
  }
  StorePack<N>(out + start, count, v);
}

// x[i] += bias[i % cols], the column stepped as in BroadcastRowsKernel.
template <typename B, typename X, int N>
__global__ void BiasAddKernel(const B* bias, X* x, int64_t n, int64_t cols) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  int64_t c = start % cols;
  float v[N];
  LoadPack<N>(x + start, count, v);
#pragma unroll
  for (int k = 0; k < N; ++k) {
    if (k < count) v[k] += Load(bias + c);
    if (++c == cols) c = 0;
  }
  StorePack<N>(x + start, count, v);
}

// Same-dtype copy between any strides: thread i copies element i of the
// row-major order of `shape`, whose offsets it finds by peeling the indices off
// the last dim first. E is an unsigned integer of the element's size (a copy
// moves bits; it never converts).
struct StridedLayout {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t src_strides[kMaxDims];
  int64_t dst_strides[kMaxDims];
};

template <typename E>
__global__ void StridedCopyKernel(const E* src, E* dst, int64_t n, StridedLayout layout) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t rem = i, src_offset = 0, dst_offset = 0;
  for (int d = layout.ndim - 1; d >= 0; --d) {
    const int64_t index = rem % layout.shape[d];
    rem /= layout.shape[d];
    src_offset += index * layout.src_strides[d];
    dst_offset += index * layout.dst_strides[d];
  }
  dst[dst_offset] = src[src_offset];
}

// BiasGrad, deterministic without atomics, in two passes over a partition of
// the rows that depends on the shape alone:
//   pass 1: the rows are cut into `groups` groups of rows_per_group (the last
//     may be shorter); block (column tile, group) owns 32 columns of one group.
//     threadIdx.x is the column within the tile (a warp reads 32 consecutive
//     elements of one row: coalesced), threadIdx.y a row lane: lane l sums the
//     group's rows l, l + 8, ... in increasing order in double, then thread
//     (x, 0) adds the 8 lanes' sums in lane order into partials[group][column].
//   pass 2: one thread per column adds its groups' partials in group order,
//     rounds the double to fp32 once (as the CPU does) and adds it to dbias.
constexpr int kColumnsPerBlock = 32;
constexpr int kRowLanes = 8;
constexpr int64_t kMinRowsPerGroup = 256;
constexpr int64_t kMaxRowGroups = 32;  // partials: at most 32 doubles per column

template <typename DY>
__global__ void BiasGradPartialsKernel(const DY* dy, int64_t rows, int64_t cols,
                                       int64_t rows_per_group, double* partials) {
  __shared__ double lane_sums[kRowLanes][kColumnsPerBlock];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kColumnsPerBlock + threadIdx.x;
  const int64_t group = blockIdx.y;
  const int64_t first_row = group * rows_per_group;
  const int64_t end_row =
      first_row + rows_per_group < rows ? first_row + rows_per_group : rows;
  double sum = 0.0;
  if (c < cols) {
    for (int64_t r = first_row + threadIdx.y; r < end_row; r += kRowLanes) {
      sum += Load(dy + r * cols + c);
    }
  }
  lane_sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  double total = 0.0;
  for (int lane = 0; lane < kRowLanes; ++lane) total += lane_sums[lane][threadIdx.x];
  partials[group * cols + c] = total;
}

template <typename DB>
__global__ void BiasGradFinishKernel(const double* partials, int64_t groups, int64_t cols,
                                     DB* dbias) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  double total = 0.0;
  for (int64_t g = 0; g < groups; ++g) total += partials[g * cols + c];
  Store(dbias + c, Load(dbias + c) + static_cast<float>(total));
}

// ---------------------------------------------------------------------------
// Host side.

// Calls fn(S{}, D{}) with the storage types of two float dtypes.
template <typename Fn>
absl::Status DispatchTwoFloatStorages(DType first, DType second, absl::string_view op, Fn&& fn) {
  return DispatchFloatStorage(first, op, [&](auto a) {
    return DispatchFloatStorage(second, op, [&](auto b) { return fn(a, b); });
  });
}

}  // namespace

absl::Status Fill(cudaStream_t stream, const Tensor& x, float value) {
  RETURN_IF_ERROR(CheckFloatOperand("Fill", "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("Fill", {{"x", x}}));
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(x.dtype(), "Fill", [&](auto zero) {
    using T = decltype(zero);
    T* px = static_cast<T*>(x.raw_data());
    return WithPackWidth(PackAligned<T>(px), [&](auto width) {
      constexpr int N = decltype(width)::value;
      FillKernel<T, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(px, n, value);
      return LaunchStatus("Fill");
    });
  });
}

absl::Status Copy(cudaStream_t stream, const Tensor& src, const Tensor& dst) {
  if (!src.defined()) return absl::InvalidArgumentError("Copy: src is undefined");
  if (!dst.defined()) return absl::InvalidArgumentError("Copy: dst is undefined");
  RETURN_IF_ERROR(CheckSameShape("Copy", "dst", dst, "src", src));
  const bool converts = src.dtype() != dst.dtype();
  if (converts) {
    // A conversion: both float storage and contiguous.
    RETURN_IF_ERROR(CheckFloatOperand("Copy", "src", src));
    RETURN_IF_ERROR(CheckFloatOperand("Copy", "dst", dst));
  } else if (src.ndim() > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat("Copy: src has ", src.ndim(), " dims, at most ", kMaxDims));
  }
  RETURN_IF_ERROR(CheckOnOneCudaDevice("Copy", {{"src", src}, {"dst", dst}}));
  const int64_t n = src.numel();
  if (n == 0) return absl::OkStatus();

  if (converts) {
    return DispatchTwoFloatStorages(src.dtype(), dst.dtype(), "Copy", [&](auto s, auto d) {
      using S = decltype(s);
      using D = decltype(d);
      const S* ps = static_cast<const S*>(src.raw_data());
      D* pd = static_cast<D*>(dst.raw_data());
      return WithPackWidth(PackAligned<S>(ps) && PackAligned<D>(pd), [&](auto width) {
        constexpr int N = decltype(width)::value;
        ConvertKernel<S, D, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(ps, pd, n);
        return LaunchStatus("Copy");
      });
    });
  }
  if (src.is_contiguous() && dst.is_contiguous()) {
    const cudaError_t error = cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(),
                                              cudaMemcpyDeviceToDevice, stream);
    if (error == cudaSuccess) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("Copy: cudaMemcpyAsync: ", cudaGetErrorName(error),
                                               " (", cudaGetErrorString(error), ")"));
  }
  StridedLayout layout{};
  layout.ndim = src.ndim();
  for (int d = 0; d < src.ndim(); ++d) {
    layout.shape[d] = src.dim(d);
    layout.src_strides[d] = src.stride(d);
    layout.dst_strides[d] = dst.stride(d);
  }
  const unsigned blocks = BlocksFor(n, kThreads);
  switch (src.element_size()) {
    case 2:
      StridedCopyKernel<uint16_t><<<blocks, kThreads, 0, stream>>>(
          static_cast<const uint16_t*>(src.raw_data()), static_cast<uint16_t*>(dst.raw_data()), n,
          layout);
      break;
    case 4:
      StridedCopyKernel<uint32_t><<<blocks, kThreads, 0, stream>>>(
          static_cast<const uint32_t*>(src.raw_data()), static_cast<uint32_t*>(dst.raw_data()), n,
          layout);
      break;
    case 8:
      StridedCopyKernel<uint64_t><<<blocks, kThreads, 0, stream>>>(
          static_cast<const uint64_t*>(src.raw_data()), static_cast<uint64_t*>(dst.raw_data()), n,
          layout);
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("Copy: src has element size ",
                                                     src.element_size(), ", expected 2, 4 or 8"));
  }
  return LaunchStatus("Copy");
}

absl::Status Add(cudaStream_t stream, const Tensor& a, const Tensor& b, const Tensor& out) {
  RETURN_IF_ERROR(CheckFloatOperand("Add", "a", a));
  RETURN_IF_ERROR(CheckFloatOperand("Add", "b", b));
  RETURN_IF_ERROR(CheckFloatOperand("Add", "out", out));
  RETURN_IF_ERROR(CheckSameShape("Add", "b", b, "a", a));
  RETURN_IF_ERROR(CheckSameShape("Add", "out", out, "a", a));
  RETURN_IF_ERROR(CheckSameDType("Add", "b", b, "a", a));
  RETURN_IF_ERROR(CheckSameDType("Add", "out", out, "a", a));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("Add", {{"a", a}, {"b", b}, {"out", out}}));
  const int64_t n = a.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(a.dtype(), "Add", [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    const bool aligned = PackAligned<T>(pa) && PackAligned<T>(pb) && PackAligned<T>(po);
    return WithPackWidth(aligned, [&](auto width) {
      constexpr int N = decltype(width)::value;
      AddKernel<T, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(pa, pb, po, n);
      return LaunchStatus("Add");
    });
  });
}

absl::Status Axpy(cudaStream_t stream, float alpha, const Tensor& x, const Tensor& y) {
  RETURN_IF_ERROR(CheckFloatOperand("Axpy", "x", x));
  RETURN_IF_ERROR(CheckFloatOperand("Axpy", "y", y));
  RETURN_IF_ERROR(CheckSameShape("Axpy", "y", y, "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("Axpy", {{"x", x}, {"y", y}}));
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchTwoFloatStorages(x.dtype(), y.dtype(), "Axpy", [&](auto xs, auto ys) {
    using X = decltype(xs);
    using Y = decltype(ys);
    const X* px = static_cast<const X*>(x.raw_data());
    Y* py = static_cast<Y*>(y.raw_data());
    return WithPackWidth(PackAligned<X>(px) && PackAligned<Y>(py), [&](auto width) {
      constexpr int N = decltype(width)::value;
      AxpyKernel<X, Y, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(alpha, px, py,
                                                                                     n);
      return LaunchStatus("Axpy");
    });
  });
}

absl::Status Scale(cudaStream_t stream, const Tensor& x, float alpha) {
  RETURN_IF_ERROR(CheckFloatOperand("Scale", "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("Scale", {{"x", x}}));
  const int64_t n = x.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(x.dtype(), "Scale", [&](auto zero) {
    using T = decltype(zero);
    T* px = static_cast<T*>(x.raw_data());
    return WithPackWidth(PackAligned<T>(px), [&](auto width) {
      constexpr int N = decltype(width)::value;
      ScaleKernel<T, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(px, n, alpha);
      return LaunchStatus("Scale");
    });
  });
}

absl::Status BroadcastRows(cudaStream_t stream, const Tensor& row, const Tensor& out) {
  RETURN_IF_ERROR(CheckFloatOperand("BroadcastRows", "row", row));
  RETURN_IF_ERROR(CheckFloatOperand("BroadcastRows", "out", out));
  RETURN_IF_ERROR(CheckRowOperand("BroadcastRows", "row", row, "out", out));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("BroadcastRows", {{"row", row}, {"out", out}}));
  const int64_t n = out.numel();
  const int64_t cols = row.numel();
  if (n == 0 || cols == 0) return absl::OkStatus();
  return DispatchTwoFloatStorages(row.dtype(), out.dtype(), "BroadcastRows", [&](auto rs, auto os) {
    using R = decltype(rs);
    using O = decltype(os);
    const R* pr = static_cast<const R*>(row.raw_data());
    O* po = static_cast<O*>(out.raw_data());
    return WithPackWidth(PackAligned<O>(po), [&](auto width) {
      constexpr int N = decltype(width)::value;
      BroadcastRowsKernel<R, O, N>
          <<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(pr, po, n, cols);
      return LaunchStatus("BroadcastRows");
    });
  });
}

absl::Status BiasAdd(cudaStream_t stream, const Tensor& bias, const Tensor& x) {
  RETURN_IF_ERROR(CheckFloatOperand("BiasAdd", "bias", bias));
  RETURN_IF_ERROR(CheckFloatOperand("BiasAdd", "x", x));
  RETURN_IF_ERROR(CheckRowOperand("BiasAdd", "bias", bias, "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("BiasAdd", {{"bias", bias}, {"x", x}}));
  const int64_t n = x.numel();
  const int64_t cols = bias.numel();
  if (n == 0 || cols == 0) return absl::OkStatus();
  return DispatchTwoFloatStorages(bias.dtype(), x.dtype(), "BiasAdd", [&](auto bs, auto xs) {
    using B = decltype(bs);
    using X = decltype(xs);
    const B* pb = static_cast<const B*>(bias.raw_data());
    X* px = static_cast<X*>(x.raw_data());
    return WithPackWidth(PackAligned<X>(px), [&](auto width) {
      constexpr int N = decltype(width)::value;
      BiasAddKernel<B, X, N>
          <<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(pb, px, n, cols);
      return LaunchStatus("BiasAdd");
    });
  });
}

absl::Status BiasGrad(cudaStream_t stream, const Tensor& dy, const Tensor& dbias) {
  RETURN_IF_ERROR(CheckFloatOperand("BiasGrad", "dy", dy));
  RETURN_IF_ERROR(CheckFloatOperand("BiasGrad", "dbias", dbias));
  RETURN_IF_ERROR(CheckRowOperand("BiasGrad", "dbias", dbias, "dy", dy));
  RETURN_IF_ERROR(CheckOnOneCudaDevice("BiasGrad", {{"dy", dy}, {"dbias", dbias}}));
  const int64_t cols = dbias.numel();
  if (cols == 0) return absl::OkStatus();
  const int64_t rows = dy.numel() / cols;
  if (rows == 0) return absl::OkStatus();  // dbias += 0
  // The partition: groups of at least 256 rows, at most 32 groups.
  const int64_t rows_per_group =
      std::max(kMinRowsPerGroup, (rows + kMaxRowGroups - 1) / kMaxRowGroups);
  const int64_t groups = (rows + rows_per_group - 1) / rows_per_group;
  // Stream-ordered scratch for the partials (groups * cols doubles).
  double* partials = nullptr;
  if (const cudaError_t error = cudaMallocAsync(reinterpret_cast<void**>(&partials),
                                                groups * cols * sizeof(double), stream);
      error != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("BiasGrad: cudaMallocAsync: ",
                                               cudaGetErrorName(error), " (",
                                               cudaGetErrorString(error), ")"));
  }
  const absl::Status launched =
      DispatchTwoFloatStorages(dy.dtype(), dbias.dtype(), "BiasGrad", [&](auto ys, auto bs) {
        using DY = decltype(ys);
        using DB = decltype(bs);
        const dim3 grid(BlocksFor(cols, kColumnsPerBlock), static_cast<unsigned>(groups));
        const dim3 threads(kColumnsPerBlock, kRowLanes);
        BiasGradPartialsKernel<DY><<<grid, threads, 0, stream>>>(
            static_cast<const DY*>(dy.raw_data()), rows, cols, rows_per_group, partials);
        RETURN_IF_ERROR(LaunchStatus("BiasGrad"));
        BiasGradFinishKernel<DB><<<BlocksFor(cols, kThreads), kThreads, 0, stream>>>(
            partials, groups, cols, static_cast<DB*>(dbias.raw_data()));
        return LaunchStatus("BiasGrad");
      });
  // Freed in stream order, after the kernels that use it.
  const cudaError_t freed = cudaFreeAsync(partials, stream);
  RETURN_IF_ERROR(launched);
  if (freed != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("BiasGrad: cudaFreeAsync: ",
                                               cudaGetErrorName(freed), " (",
                                               cudaGetErrorString(freed), ")"));
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
