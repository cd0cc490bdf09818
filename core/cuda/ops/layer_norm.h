#ifndef TRIDENT_CORE_CUDA_OPS_LAYER_NORM_H_
#define TRIDENT_CORE_CUDA_OPS_LAYER_NORM_H_

// LayerNorm on the GPU: the Backend methods of core/ops/layer_norm.h (same
// names, same argument order, a stream in place of the ExecContext), with the
// semantics documented there and computed as core/ops/cpu/layer_norm.cc does:
// two-pass mean and biased variance in fp32, mean and rstd saved in fp32.
//
// Storage: x, y, gamma, beta, a, b, sum, dy, d_residual and dx share one float
// dtype (fp32, bf16 or fp16; compute is fp32, stores round to nearest even);
// mean and rstd are fp32; dgamma and dbeta share one float dtype of their own
// (fp32 gradients of 16-bit weights are allowed). Every tensor contiguous and
// on one CUDA device.
//
// Each function validates its arguments on the host (INVALID_ARGUMENT naming
// the op and the argument), queues its kernels on `stream` and returns without
// synchronising; a failed launch is UNAVAILABLE.
//
// Row kernels run one block per row (16-byte packs when the row width and the
// pointers allow, else scalar). LayerNormBackwardWeights is deterministic and
// uses no atomics: per-block column partial sums over fixed row ranges, then a
// second pass adds them per column in row-range order.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

// y = (x - mean) * rstd * gamma + beta per row of x [rows, C]; y may be x.
absl::Status LayerNormForward(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                              const Tensor& beta, float epsilon, const Tensor& y,
                              const Tensor& mean, const Tensor& rstd);

// dx (overwritten) from dy; dx may be dy.
absl::Status LayerNormBackwardInput(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                                    const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                    const Tensor& dx);

// sum = a + b (rounded to the storage dtype), then y = LayerNorm(sum). sum may
// be a or b; y may be any of a, b, sum (each thread reads its own elements
// before writing them), though partial overlaps are not allowed.
absl::Status AddLayerNormForward(cudaStream_t stream, const Tensor& a, const Tensor& b,
                                 const Tensor& gamma, const Tensor& beta, float epsilon,
                                 const Tensor& sum, const Tensor& y, const Tensor& mean,
                                 const Tensor& rstd);

// dx = LayerNormBackwardInput(x, dy) + d_residual, the LayerNorm part computed
// in fp32 and added without contraction (as the unfused pair); dx may be dy or
// d_residual.
absl::Status AddLayerNormBackwardInput(cudaStream_t stream, const Tensor& x, const Tensor& gamma,
                                       const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                       const Tensor& d_residual, const Tensor& dx);

// dgamma += sum over rows of dy * (x - mean) * rstd; dbeta += sum over rows of dy.
absl::Status LayerNormBackwardWeights(cudaStream_t stream, const Tensor& x, const Tensor& mean,
                                      const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                                      const Tensor& dbeta);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_LAYER_NORM_H_
