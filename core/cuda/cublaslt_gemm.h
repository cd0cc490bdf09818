#ifndef TRIDENT_CORE_CUDA_CUBLASLT_GEMM_H_
#define TRIDENT_CORE_CUDA_CUBLASLT_GEMM_H_

// The project's matrix products as single cuBLASLt calls on one GPU: the
// general products of core/ops/gemm.h,
//   Gemm:                     C = alpha op(A) op(B) + beta C  (2-D, or a 3-D batch)
// and the linear layer's fused ones (core/ops/linear.h):
//   LinearForward kBias:      y = x W + b                  (EPILOGUE_BIAS)
//   LinearForward kBiasGelu:  pre = x W + b, y = GELU(pre) (EPILOGUE_GELU_AUX_BIAS)
//   LinearWeightGrad:         dW += x^T dy, db += colsum(dy) (EPILOGUE_BGRADA)
// with x [M, K], W [K, N] (row-major, GPT-2's Conv1D layout), b [N]; how these
// map onto cuBLASLt's column-major operands is in gemm_layout.h.
//
// Gemm takes operands with unit column stride and any row stride (column
// windows in place) and, batched, any batch stride.
//
// Types: every tensor of one call has the same dtype, fp32, bf16 or fp16;
// products accumulate in fp32 (CUBLAS_COMPUTE_32F) and alpha/beta are fp32.
// fp32 uses TF32 tensor cores only when allow_tf32 is set.
//
// The algorithm of each (shape, dtype, epilogue, alignment) is chosen once by
// cublasLtMatmulAlgoGetHeuristic and cached with its descriptors; one
// workspace, allocated at creation, serves every call. An LtGemm queues work on
// the stream it is given and is not thread-safe: one per stream/thread.

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cuda/gemm_layout.h"
#include "core/cuda/gemm_plan_key.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::cuda {

struct LtGemmOptions {
  // Hopper's recommended cuBLASLt workspace.
  int64_t workspace_bytes = int64_t{32} << 20;
  bool allow_tf32 = false;
};

class LtGemm {
 public:
  // `allocator` gives the workspace and the bias-gradient scratch; its device
  // is the GPU every tensor must be on.
  static absl::StatusOr<std::unique_ptr<LtGemm>> Create(std::shared_ptr<Allocator> allocator,
                                                        LtGemmOptions options = {});
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // C = alpha op(A) op(B) + beta C with core/ops/gemm.h's shapes: a, b, c all
  // 2-D, or all 3-D [batch, rows, cols] (BatchedGemm). beta = 0 never reads C.
  // INVALID_ARGUMENT naming the operand for a shape, dtype, device or stride
  // cuBLASLt cannot take, or an inner dimension k = 0.
  absl::Status Gemm(cudaStream_t stream, const Tensor& a, ops::Trans trans_a, const Tensor& b,
                    ops::Trans trans_b, const Tensor& c, float alpha, float beta);

  // `pre` must have y's shape for kBiasGelu and is ignored for kBias.
  absl::Status LinearForward(cudaStream_t stream, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, ops::LinearEpilogue epilogue, const Tensor& y,
                             const Tensor& pre = Tensor());
  // Accumulates into dweight and dbias, as the CPU op does.
  absl::Status LinearWeightGrad(cudaStream_t stream, const Tensor& x, const Tensor& dy,
                                const Tensor& dweight, const Tensor& dbias);

  // Distinct plans chosen so far (one heuristic query each).
  int64_t cached_plans() const { return static_cast<int64_t>(plans_.size()); }

 private:
  struct Plan;
  struct Handle;
  LtGemm(std::shared_ptr<Allocator> allocator, LtGemmOptions options,
         std::unique_ptr<Handle> handle, Tensor workspace);

  // The cached plan of `key`, made on first use (descriptors of `layout`, the
  // operands `key` was made from, then the heuristic), with this call's bias
  // and GELU aux (or null) pointers set on it.
  absl::StatusOr<Plan*> PlanFor(const GemmPlanKey& key, const LtGemmLayout& layout, void* bias,
                                void* aux);
  static absl::Status SetEpiloguePointers(Plan& plan, void* bias, void* aux);

  std::shared_ptr<Allocator> allocator_;
  LtGemmOptions options_;
  std::unique_ptr<Handle> handle_;
  Tensor workspace_;
  absl::flat_hash_map<GemmPlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_CUBLASLT_GEMM_H_
