#include "core/cuda/host_sync.h"
#include "core/cuda/ops/reduction.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/chunk_table.h"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/pack_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

// Elements per stage-1 block: the CPU twin's block of 64 Ki.
constexpr int64_t kChunk = int64_t{1} << 16;
constexpr int kThreads = 256;          // stage 1
constexpr int kPartialThreads = 1024;  // stage 2

// Up to kMaxTensorsPerLaunch tensors of one stage-1 launch (chunk_table.h).
struct ReductionTable {
  int count;
  // Where this launch's first chunk writes in the partials array (launches
  // after the first continue the numbering).
  int64_t partial_offset;
  const void* data[kMaxTensorsPerLaunch];
  int64_t numel[kMaxTensorsPerLaunch];
  int64_t first_chunk[kMaxTensorsPerLaunch + 1];
  DType dtype[kMaxTensorsPerLaunch];
};

// The sum of `value` over the block's threads, valid in thread 0, in a fixed
// order: a shuffle tree within each warp, then the warps' sums in warp order.
// Every thread of the block must call it (blockDim.x a multiple of 32).
__device__ double BlockSum(double value) {
  __shared__ double warp_sums[32];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_down_sync(0xffffffffu, value, offset);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += warp_sums[w];
  }
  return total;
}

// This thread's share of elements [begin, end) of p: packs begin + tid * N,
// then every blockDim.x * N further (coalesced), summed in order in double.
template <typename T, bool kSquare, int N>
__device__ double ThreadSum(const T* p, int64_t begin, int64_t end) {
  double sum = 0.0;
  const int64_t stride = static_cast<int64_t>(blockDim.x) * N;
  for (int64_t i = begin + static_cast<int64_t>(threadIdx.x) * N; i < end; i += stride) {
    float v[N];
    LoadPack<N>(p + i, PackCount<N>(i, end), v);  // zeros past `end`
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const double d = v[k];
      sum += kSquare ? d * d : d;
    }
  }
  return sum;
}

template <typename T, bool kSquare>
__device__ double ThreadSumAnyAlignment(const void* data, int64_t begin, int64_t end) {
  const T* p = static_cast<const T*>(data);
  // Chunks start at multiples of 64 Ki elements: pack-aligned iff the base is.
  if (PackAligned<T>(p)) return ThreadSum<T, kSquare, kPack>(p, begin, end);
  return ThreadSum<T, kSquare, 1>(p, begin, end);
}

// Stage 1: block b sums its chunk into partials[partial_offset + b].
// __grid_constant__: the table is read in place from the parameter bank
// (taking its address would otherwise copy it into every thread's local memory).
template <bool kSquare>
__global__ void ChunkSumsKernel(const __grid_constant__ ReductionTable table, double* partials) {
  const int64_t block = blockIdx.x;
  const int t = TensorOfBlock(table.first_chunk, table.count, block);
  const int64_t begin = (block - table.first_chunk[t]) * kChunk;
  const int64_t end = begin + kChunk < table.numel[t] ? begin + kChunk : table.numel[t];
  double sum = 0.0;
  switch (table.dtype[t]) {
    case DType::kFloat32:
      sum = ThreadSumAnyAlignment<float, kSquare>(table.data[t], begin, end);
      break;
    case DType::kBFloat16:
      sum = ThreadSumAnyAlignment<__nv_bfloat16, kSquare>(table.data[t], begin, end);
      break;
    case DType::kFloat16:
      sum = ThreadSumAnyAlignment<__half, kSquare>(table.data[t], begin, end);
      break;
    default:  // The host admits float dtypes only.
      break;
  }
  const double total = BlockSum(sum);
  if (threadIdx.x == 0) partials[table.partial_offset + block] = total;
}

// Stage 2: *result = the sum of partials[0, count), in BlockSum's fixed order
// over threads that each add partials tid, tid + blockDim.x, ... in order.
__global__ void AddPartialsKernel(const double* partials, int64_t count, double* result) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  const double total = BlockSum(sum);
  if (threadIdx.x == 0) *result = total;
}

absl::Status CudaStatus(absl::string_view op, absl::string_view what, cudaError_t error) {
  if (error == cudaSuccess) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(op, ": ", what, ": ", cudaGetErrorName(error), " (",
                                             cudaGetErrorString(error), ")"));
}

// Both stages over `tensors` (already checked), then the read-back.
absl::StatusOr<double> ReduceToHost(cudaStream_t stream, absl::string_view op,
                                    absl::Span<const Tensor> tensors, bool square) {
  std::vector<int64_t> numels;
  for (const Tensor& t : tensors) numels.push_back(t.numel());
  const std::vector<ChunkLaunch> launches = PlanChunkLaunches(numels, kChunk);
  if (launches.empty()) return 0.0;  // Nothing but empty tensors.
  const int64_t total_chunks =
      launches.back().first_block_overall + launches.back().first_chunk.back();

  // partials[0, total_chunks) then the result.
  double* scratch = nullptr;
  RETURN_IF_ERROR(CudaStatus(op, "cudaMallocAsync",
                             cudaMallocAsync(reinterpret_cast<void**>(&scratch),
                                             (total_chunks + 1) * sizeof(double), stream)));
  absl::Status status;  // The first error; later steps are skipped.
  for (const ChunkLaunch& launch : launches) {
    if (!status.ok()) break;
    ReductionTable table{};
    table.count = static_cast<int>(launch.tensors.size());
    table.partial_offset = launch.first_block_overall;
    for (int t = 0; t < table.count; ++t) {
      const Tensor& x = tensors[launch.tensors[t]];
      table.data[t] = x.raw_data();
      table.numel[t] = x.numel();
      table.dtype[t] = x.dtype();
      table.first_chunk[t] = launch.first_chunk[t];
    }
    table.first_chunk[table.count] = launch.first_chunk[table.count];
    const unsigned blocks = static_cast<unsigned>(launch.first_chunk.back());
    if (square) {
      ChunkSumsKernel<true><<<blocks, kThreads, 0, stream>>>(table, scratch);
    } else {
      ChunkSumsKernel<false><<<blocks, kThreads, 0, stream>>>(table, scratch);
    }
    status.Update(LaunchStatus(op));
  }
  if (status.ok()) {
    AddPartialsKernel<<<1, kPartialThreads, 0, stream>>>(scratch, total_chunks,
                                                         scratch + total_chunks);
    status.Update(LaunchStatus(op));
  }
  double result = 0.0;
  if (status.ok()) {
    status.Update(CudaStatus(op, "cudaMemcpyAsync",
                             cudaMemcpyAsync(&result, scratch + total_chunks, sizeof(double),
                                             cudaMemcpyDeviceToHost, stream)));
  }
  // Freed in stream order, after everything above that reads it.
  const absl::Status freed = CudaStatus(op, "cudaFreeAsync", cudaFreeAsync(scratch, stream));
  CountHostSync();  // The read-back: the sum is a host value.
  const absl::Status synced =
      CudaStatus(op, "cudaStreamSynchronize", cudaStreamSynchronize(stream));
  RETURN_IF_ERROR(status);
  RETURN_IF_ERROR(freed);
  RETURN_IF_ERROR(synced);
  return result;
}

absl::StatusOr<double> ReduceOne(cudaStream_t stream, absl::string_view op, const Tensor& x,
                                 bool square) {
  RETURN_IF_ERROR(CheckFloatOperand(op, "x", x));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(op, {{"x", x}}));
  return ReduceToHost(stream, op, absl::MakeConstSpan(&x, 1), square);
}

absl::StatusOr<double> ReduceMany(cudaStream_t stream, absl::string_view op,
                                  absl::Span<const Tensor> tensors, bool square) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    RETURN_IF_ERROR(CheckFloatOperand(op, absl::StrCat("tensors[", i, "]"), tensors[i]));
  }
  RETURN_IF_ERROR(CheckOnOneCudaDevice(op, "tensors", tensors));
  return ReduceToHost(stream, op, tensors, square);
}

}  // namespace

absl::StatusOr<double> Sum(cudaStream_t stream, const Tensor& x) {
  return ReduceOne(stream, "Sum", x, /*square=*/false);
}

absl::StatusOr<double> SumOfSquares(cudaStream_t stream, const Tensor& x) {
  return ReduceOne(stream, "SumOfSquares", x, /*square=*/true);
}

absl::StatusOr<double> MultiTensorSum(cudaStream_t stream, absl::Span<const Tensor> tensors) {
  return ReduceMany(stream, "MultiTensorSum", tensors, /*square=*/false);
}

absl::StatusOr<double> MultiTensorSumOfSquares(cudaStream_t stream,
                                               absl::Span<const Tensor> tensors) {
  return ReduceMany(stream, "MultiTensorSumOfSquares", tensors, /*square=*/true);
}

}  // namespace trident::cuda
