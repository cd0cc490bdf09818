#include "core/cuda/ops/embedding.h"

#include <cstdint>
#include <cstdio>
#include <cub/device/device_radix_sort.cuh>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/row_kernels.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

using ops::OutOfRangeIds;

constexpr int kThreads = 256;

// The kAbort policy met an id outside the table: say which, then stop the
// kernel (and poison the context) as a device-side assert does.
__device__ void AbortOnOutOfRangeId(const char* op, int32_t id, int64_t row_start, int64_t rows) {
  if (threadIdx.x == 0 && threadIdx.y == 0) {
    printf("%s: token id %d is outside the table's rows [%lld, %lld)\n", op, id,
           static_cast<long long>(row_start), static_cast<long long>(row_start + rows));
  }
  __trap();
}

// Block i copies table row ids[i] - row_start into out row i (or zeros), in
// chunks of kWidth elements.
template <typename T, int kWidth>
__global__ void GatherRowsKernel(const int32_t* ids, const T* table, int64_t row_start,
                                 int64_t rows, int64_t cols, bool abort_out_of_range, T* out) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  const int64_t row = static_cast<int64_t>(id) - row_start;
  const bool in_range = row >= 0 && row < rows;
  if (!in_range && abort_out_of_range) AbortOnOutOfRangeId("GatherRows", id, row_start, rows);
  const int64_t chunks = cols / kWidth;
  T* dst = out + i * cols;
  for (int64_t k = threadIdx.x; k < chunks; k += blockDim.x) {
    Pack<T, kWidth> pack;
    if (in_range) {
      pack = LoadPack<T, kWidth>(table + row * cols + k * kWidth);
    } else {
      for (int e = 0; e < kWidth; ++e) Store(&pack.v[e], 0.0f);
    }
    StorePack<T, kWidth>(dst + k * kWidth, pack);
  }
}

// positions[i] = i: the values the sort by id carries along.
__global__ void IotaKernel(int32_t* positions, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) positions[i] = static_cast<int32_t>(i);
}

// Block (p, s) of the id-sorted order; columns [s * blockDim.x, ...) of the
// rows. Only the block at the START of a run of equal ids writes: it sums the
// dout rows of the run's positions onto the table row, one thread per column,
// in ascending position order (the radix sort is stable and the positions
// went in ascending), which is the CPU twin's token order. No other block
// touches that row: no atomics, no races.
template <typename T, typename G>
__global__ void ScatterAddSortedRunsKernel(const int32_t* sorted_ids,
                                           const int32_t* sorted_positions, int64_t n,
                                           const T* dout, int64_t row_start, int64_t rows,
                                           int64_t cols, bool abort_out_of_range, G* dtable) {
  const int64_t p = blockIdx.x;
  const int32_t id = sorted_ids[p];
  if (p > 0 && sorted_ids[p - 1] == id) return;  // Inside a run: its start's block owns it.
  const int64_t row = static_cast<int64_t>(id) - row_start;
  if (row < 0 || row >= rows) {
    if (abort_out_of_range) AbortOnOutOfRangeId("ScatterAddRows", id, row_start, rows);
    return;  // Another shard's id: no gradient here.
  }
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  int64_t end = p + 1;
  while (end < n && sorted_ids[end] == id) ++end;
  G* dst = dtable + row * cols + c;
  float acc = Load(dst);
  // A known trip count lets the loads of several rows be in flight at once;
  // the adds stay in order.
#pragma unroll 8
  for (int64_t q = p; q < end; ++q) {
    acc += Load(dout + static_cast<int64_t>(sorted_positions[q]) * cols + c);
  }
  Store(dst, acc);
}

// out[b, t, :] += wpe[t, :], chunk k of the flattened [B * T, C] activations.
template <typename T, int kWidth>
__global__ void AddPositionEmbeddingKernel(const T* wpe, int64_t seq, int64_t cols, int64_t chunks,
                                           T* out) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= chunks) return;
  const int64_t element = k * kWidth;  // kWidth divides cols: a chunk stays in one row.
  const int64_t t = (element / cols) % seq;
  const int64_t c = element % cols;
  const Pack<T, kWidth> pw = LoadPack<T, kWidth>(wpe + t * cols + c);
  Pack<T, kWidth> po = LoadPack<T, kWidth>(out + element);
  for (int e = 0; e < kWidth; ++e) Store(&po.v[e], Load(&po.v[e]) + Load(&pw.v[e]));
  StorePack<T, kWidth>(out + element, po);
}

// dwpe[t, c] += dout[0, t, c] + dout[1, t, c] + ... in batch order, one thread
// per (t, c) (consecutive threads on consecutive columns: coalesced).
template <typename T, typename G>
__global__ void PositionEmbeddingGradKernel(const T* dout, int64_t batch, int64_t seq, int64_t cols,
                                            G* dwpe) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= seq * cols) return;  // k = t * cols + c.
  float acc = Load(dwpe + k);
  for (int64_t b = 0; b < batch; ++b) acc += Load(dout + b * seq * cols + k);
  Store(dwpe + k, acc);
}

// ids (int32, n elements) against a table [rows, C] and row data of n * C
// elements with last dim C (named rows_name).
absl::Status CheckIdsAndRows(absl::string_view op, const Tensor& ids, absl::string_view table_name,
                             const Tensor& table, absl::string_view rows_name,
                             const Tensor& row_data) {
  RETURN_IF_ERROR(CheckOperand(op, "ids", ids, DType::kInt32));
  RETURN_IF_ERROR(CheckFloatOperand(op, table_name, table));
  if (table.ndim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": ", table_name, " has shape ", ShapeToString(table.shape()), ", expected [rows, C]"));
  }
  RETURN_IF_ERROR(CheckFloatOperand(op, rows_name, row_data));
  if (row_data.ndim() < 1 || row_data.dim(-1) != table.dim(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": ", rows_name, " has shape ", ShapeToString(row_data.shape()),
        ", expected its last dim to be ", table.dim(1), ", the width of ", table_name));
  }
  RETURN_IF_ERROR(CheckNumel(op, rows_name, row_data, ids.numel() * table.dim(1)));
  if (ids.numel() > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ids has ", ids.numel(), " elements, more than one launch takes"));
  }
  return absl::OkStatus();
}

// Activations [B, T, C] against a position table [P >= T, C].
absl::Status CheckPositions(absl::string_view op, absl::string_view table_name, const Tensor& table,
                            absl::string_view act_name, const Tensor& act) {
  RETURN_IF_ERROR(CheckFloatOperand(op, table_name, table));
  RETURN_IF_ERROR(CheckFloatOperand(op, act_name, act));
  if (table.ndim() != 2 || act.ndim() != 3 || act.dim(2) != table.dim(1) ||
      act.dim(1) > table.dim(0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", act_name, " ", ShapeToString(act.shape()), " [B, T, C] needs ",
                     table_name, " [P >= T, C], got ", ShapeToString(table.shape())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status GatherRows(cudaStream_t stream, const Tensor& ids, const Tensor& table,
                        int64_t row_start, OutOfRangeIds policy, const Tensor& out) {
  constexpr absl::string_view kOp = "GatherRows";
  RETURN_IF_ERROR(CheckIdsAndRows(kOp, ids, "table", table, "out", out));
  RETURN_IF_ERROR(CheckSameDType(kOp, "out", out, "table", table));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"ids", ids}, {"table", table}, {"out", out}}));
  const int64_t n = ids.numel(), rows = table.dim(0), cols = table.dim(1);
  if (n == 0 || cols == 0) return absl::OkStatus();
  return DispatchFloatStorage(table.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    const bool vector = CanUseVectorPacks<T>(cols, {table.raw_data(), out.raw_data()});
    WithPackWidth<T>(vector, [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      GatherRowsKernel<T, kWidth>
          <<<static_cast<unsigned>(n), ThreadsForRow(cols / kWidth, kThreads), 0, stream>>>(
              ids.data<int32_t>(), Data<T>(table), row_start, rows, cols,
              policy == OutOfRangeIds::kAbort, Data<T>(out));
    });
    return LaunchStatus(kOp);
  });
}

absl::Status ScatterAddRows(cudaStream_t stream, const Tensor& ids, const Tensor& dout,
                            int64_t row_start, OutOfRangeIds policy, const Tensor& dtable) {
  constexpr absl::string_view kOp = "ScatterAddRows";
  RETURN_IF_ERROR(CheckIdsAndRows(kOp, ids, "dtable", dtable, "dout", dout));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"ids", ids}, {"dout", dout}, {"dtable", dtable}}));
  const int64_t n = ids.numel(), rows = dtable.dim(0), cols = dtable.dim(1);
  if (n == 0 || cols == 0) return absl::OkStatus();

  // Stream-ordered scratch (no host synchronisation): sorted ids, positions
  // before and after the sort, and cub's temporary storage, 256-byte aligned.
  const int count = static_cast<int>(n);
  size_t sort_bytes = 0;
  if (const cudaError_t e = cub::DeviceRadixSort::SortPairs(
          nullptr, sort_bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
          static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), count, 0,
          static_cast<int>(8 * sizeof(int32_t)), stream);
      e != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat(kOp, ": sizing the sort: ", cudaGetErrorName(e)));
  }
  const size_t array_bytes = (n * sizeof(int32_t) + 255) / 256 * 256;
  const size_t scratch_bytes = 3 * array_bytes + sort_bytes;
  char* scratch = nullptr;
  if (const cudaError_t e =
          cudaMallocAsync(reinterpret_cast<void**>(&scratch), scratch_bytes, stream);
      e != cudaSuccess) {
    return absl::ResourceExhaustedError(
        absl::StrCat(kOp, ": scratch of ", scratch_bytes, " bytes: ", cudaGetErrorName(e)));
  }
  auto* sorted_ids = reinterpret_cast<int32_t*>(scratch);
  auto* positions = reinterpret_cast<int32_t*>(scratch + array_bytes);
  auto* sorted_positions = reinterpret_cast<int32_t*>(scratch + 2 * array_bytes);
  void* sort_storage = scratch + 3 * array_bytes;

  const absl::Status queued = [&]() -> absl::Status {
    IotaKernel<<<BlocksFor(n, kThreads), kThreads, 0, stream>>>(positions, n);
    RETURN_IF_ERROR(LaunchStatus(kOp));
    if (const cudaError_t e = cub::DeviceRadixSort::SortPairs(
            sort_storage, sort_bytes, ids.data<int32_t>(), sorted_ids, positions, sorted_positions,
            count, 0, static_cast<int>(8 * sizeof(int32_t)), stream);
        e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat(kOp, ": sorting ids: ", cudaGetErrorName(e)));
    }
    const dim3 grid(static_cast<unsigned>(n), BlocksFor(cols, kThreads));
    return DispatchFloatStorage(dout.dtype(), kOp, [&](auto dout_zero) {
      using T = decltype(dout_zero);
      return DispatchFloatStorage(dtable.dtype(), kOp, [&](auto table_zero) {
        using G = decltype(table_zero);
        ScatterAddSortedRunsKernel<T, G><<<grid, kThreads, 0, stream>>>(
            sorted_ids, sorted_positions, n, Data<T>(dout), row_start, rows, cols,
            policy == OutOfRangeIds::kAbort, Data<G>(dtable));
        return LaunchStatus(kOp);
      });
    });
  }();
  const cudaError_t freed = cudaFreeAsync(scratch, stream);
  if (!queued.ok()) return queued;
  if (freed != cudaSuccess) {
    return absl::UnavailableError(
        absl::StrCat(kOp, ": freeing scratch: ", cudaGetErrorName(freed)));
  }
  return absl::OkStatus();
}

absl::Status AddPositionEmbedding(cudaStream_t stream, const Tensor& wpe, const Tensor& out) {
  constexpr absl::string_view kOp = "AddPositionEmbedding";
  RETURN_IF_ERROR(CheckPositions(kOp, "wpe", wpe, "out", out));
  RETURN_IF_ERROR(CheckSameDType(kOp, "out", out, "wpe", wpe));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"wpe", wpe}, {"out", out}}));
  const int64_t seq = out.dim(1), cols = out.dim(2);
  if (out.numel() == 0) return absl::OkStatus();
  return DispatchFloatStorage(out.dtype(), kOp, [&](auto zero) {
    using T = decltype(zero);
    const bool vector = CanUseVectorPacks<T>(cols, {wpe.raw_data(), out.raw_data()});
    WithPackWidth<T>(vector, [&](auto width) {
      constexpr int kWidth = decltype(width)::value;
      const int64_t chunks = out.numel() / kWidth;
      AddPositionEmbeddingKernel<T, kWidth><<<BlocksFor(chunks, kThreads), kThreads, 0, stream>>>(
          Data<T>(wpe), seq, cols, chunks, Data<T>(out));
    });
    return LaunchStatus(kOp);
  });
}

absl::Status PositionEmbeddingGrad(cudaStream_t stream, const Tensor& dout, const Tensor& dwpe) {
  constexpr absl::string_view kOp = "PositionEmbeddingGrad";
  RETURN_IF_ERROR(CheckPositions(kOp, "dwpe", dwpe, "dout", dout));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"dout", dout}, {"dwpe", dwpe}}));
  const int64_t batch = dout.dim(0), seq = dout.dim(1), cols = dout.dim(2);
  if (seq * cols == 0) return absl::OkStatus();
  return DispatchFloatStorage(dout.dtype(), kOp, [&](auto dout_zero) {
    using T = decltype(dout_zero);
    return DispatchFloatStorage(dwpe.dtype(), kOp, [&](auto table_zero) {
      using G = decltype(table_zero);
      PositionEmbeddingGradKernel<T, G><<<BlocksFor(seq * cols, kThreads), kThreads, 0, stream>>>(
          Data<T>(dout), batch, seq, cols, Data<G>(dwpe));
      return LaunchStatus(kOp);
    });
  });
}

}  // namespace trident::cuda
