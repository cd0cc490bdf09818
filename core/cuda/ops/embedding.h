#ifndef TRIDENT_CORE_CUDA_OPS_EMBEDDING_H_
#define TRIDENT_CORE_CUDA_OPS_EMBEDDING_H_

// Embedding kernels on the GPU: the Backend methods of core/ops/embedding.h
// (same names, same argument order, a stream in place of the ExecContext),
// with the semantics documented there and in core/ops/cpu/embedding.cc.
//
// Storage: ids int32; table, out, wpe, dout in one float dtype (fp32, bf16 or
// fp16); the gradient tables dtable and dwpe in a float dtype of their own
// (fp32 gradients of 16-bit activations are allowed). Compute is fp32, stores
// round to nearest even. Every tensor contiguous and on one CUDA device.
//
// Ids outside [row_start, row_start + table rows): OutOfRangeIds::kSkip gives a
// zero row forward and no gradient backward, as on the CPU. kAbort (the serial
// embedding, where such an id is a bug) cannot return a status without a host
// synchronisation, so the kernel prints the id and traps, as PyTorch's
// device-side asserts do: the launch's stream and context fail and the next
// synchronising call reports the error (the CPU twin aborts the process).
//
// Gradients are deterministic and use no atomics. ScatterAddRows sorts the
// ids (a stable radix sort carrying the positions, stream-ordered scratch),
// then the block at the start of each run of equal ids sums that run's dout
// rows onto the table row, one thread per column, in token order onto the
// existing value; PositionEmbeddingGrad sums over the batch in order, one
// thread per (position, column). Both are the CPU twin's order, so fp32
// results are bitwise the CPU's.

#include <cuda_runtime.h>

#include <cstdint>

#include "absl/status/status.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::cuda {

// out[i, :] = table[ids[i] - row_start, :], zeros for an id outside the table
// under kSkip. ids: any shape, n elements; table [rows, C]; out n * C elements,
// last dim C.
absl::Status GatherRows(cudaStream_t stream, const Tensor& ids, const Tensor& table,
                        int64_t row_start, ops::OutOfRangeIds policy, const Tensor& out);

// dtable[ids[i] - row_start, :] += dout[i, :] for the ids in the table's range.
absl::Status ScatterAddRows(cudaStream_t stream, const Tensor& ids, const Tensor& dout,
                            int64_t row_start, ops::OutOfRangeIds policy, const Tensor& dtable);

// out[b, t, :] += wpe[t, :] for out [B, T, C], wpe [P, C], P >= T.
absl::Status AddPositionEmbedding(cudaStream_t stream, const Tensor& wpe, const Tensor& out);

// dwpe[t, :] += sum over b of dout[b, t, :] for dout [B, T, C], dwpe [P, C], P >= T.
absl::Status PositionEmbeddingGrad(cudaStream_t stream, const Tensor& dout, const Tensor& dwpe);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_EMBEDDING_H_
