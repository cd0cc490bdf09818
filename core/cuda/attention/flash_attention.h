#ifndef TRIDENT_CORE_CUDA_ATTENTION_FLASH_ATTENTION_H_
#define TRIDENT_CORE_CUDA_ATTENTION_FLASH_ATTENTION_H_

// The fallback attention kernels: a simple, memory-efficient ("flash") causal
// attention for any float storage (fp32, bf16, fp16; computed in fp32), used for
// fp32 and for whatever cuDNN refuses. Correctness over speed: every thread's
// index arithmetic is spelled out, no tensor cores, no atomics.
//
// Semantics are core/ops/attention.h's (the CPU twin): packed qkv [B, T, 3C],
// out [B, T, C], lse [B, H, T] fp32 with lse_i = log sum_{j <= i} e^(s_ij),
// s = Q K^T / sqrt(D) (natural log); the backward overwrites all of dqkv.
//
//   forward: one block per (query tile of kForwardRows rows, head, batch), one
//     warp per query row; key tiles of 32 keys staged in shared memory; lane j
//     scores key j, then an online softmax (running max m, sum l) rescales the
//     row's output accumulator, which each lane holds for dims lane + 32 r.
//   backward, with Delta_i = rowsum(dO_i * O_i) and P_ij = e^(s_ij - lse_i):
//     dQ kernel: one block per query tile, one warp per query row, over the key
//       tiles j <= i: dS_ij = P_ij (dO_i . V_j - Delta_i), dQ_i = scale sum_j dS_ij K_j.
//     dK/dV kernel: one block per key tile, one warp per key row, over the query
//       tiles i >= j: dV_j = sum_i P_ij dO_i, dK_j = scale sum_i dS_ij Q_i.
//   Each output element is written by exactly one thread that sums its terms in
//   a fixed order: deterministic, no atomics.
//
// head_dim must be <= kMaxFlashHeadDim (the shared-memory tiles are sized for
// it); the other limits are CUDA's grid limits (heads, batch <= 65535).

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

inline constexpr int64_t kMaxFlashHeadDim = 128;

// Queues the forward on `stream`. INVALID_ARGUMENT (naming the argument) for
// what core/cuda/attention/attention_shape.h's checks refuse and head_dim >
// kMaxFlashHeadDim; UNAVAILABLE when the launch fails.
absl::Status FlashAttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                   const Tensor& out, const Tensor& lse);

// Queues the backward (two kernels) on `stream`; overwrites dqkv.
absl::Status FlashAttentionBackward(cudaStream_t stream, const Tensor& qkv, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, int num_heads,
                                    const Tensor& dqkv);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ATTENTION_FLASH_ATTENTION_H_
