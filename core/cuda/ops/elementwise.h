#ifndef TRIDENT_CORE_CUDA_OPS_ELEMENTWISE_H_
#define TRIDENT_CORE_CUDA_OPS_ELEMENTWISE_H_

// The elementwise Backend methods on a GPU: Fill, Copy, Add, Axpy, Scale,
// BroadcastRows, BiasAdd, BiasGrad, with the semantics of core/ops/elementwise.h.
// Each queues its kernel on `stream` and returns without synchronising.
//
// Storage: fp32, bf16 or fp16 (Copy: any dtype when both sides share it),
// computed in fp32 and rounded to nearest even on store, as the CPU backend's
// 16-bit storage does. Operands that play the same role share a dtype (Add's
// three, Fill's and Scale's one); a bias, a broadcast row, Axpy's x and
// BiasGrad's dbias may differ from the activation they meet (e.g. fp32
// gradients of bf16 activations). Tensors are contiguous except Copy's.
//
// Errors: INVALID_ARGUMENT naming the op and the argument (checked on the host
// before anything touches the device: structure first, then "on one CUDA
// device"); UNAVAILABLE with CUDA's error name when a launch fails.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

// Every element of x = value (rounded to x's dtype).
absl::Status Fill(cudaStream_t stream, const Tensor& x, float value);

// dst = src for tensors of one shape. Same dtype: any dtype, any strides
// (contiguous pairs are one cudaMemcpyAsync). Different dtypes: fp32, bf16,
// fp16 converted (nearest even), both contiguous.
absl::Status Copy(cudaStream_t stream, const Tensor& src, const Tensor& dst);

// out = a + b (one shape, one dtype); out may be a or b.
absl::Status Add(cudaStream_t stream, const Tensor& a, const Tensor& b, const Tensor& out);

// y += alpha * x (one shape).
absl::Status Axpy(cudaStream_t stream, float alpha, const Tensor& x, const Tensor& y);

// x *= alpha in place.
absl::Status Scale(cudaStream_t stream, const Tensor& x, float alpha);

// Every row of out = row ([C]; out's last dim is C).
absl::Status BroadcastRows(cudaStream_t stream, const Tensor& row, const Tensor& out);

// Every row of x += bias ([C]; x's last dim is C), in place.
absl::Status BiasAdd(cudaStream_t stream, const Tensor& bias, const Tensor& x);

// dbias += the sum of the rows of dy (dbias is [C], dy's last dim is C).
// Deterministic, no atomics: two passes over a partition of the rows fixed by
// the shape (groups of >= 256 rows, at most 32 groups); each group's column
// sums in double in a fixed order, then the groups' sums in group order,
// rounded to fp32 once and added to dbias. Needs groups * C doubles of
// stream-ordered scratch (cudaMallocAsync / cudaFreeAsync on `stream`).
absl::Status BiasGrad(cudaStream_t stream, const Tensor& dy, const Tensor& dbias);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_ELEMENTWISE_H_
