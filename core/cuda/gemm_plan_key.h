#ifndef TRIDENT_CORE_CUDA_GEMM_PLAN_KEY_H_
#define TRIDENT_CORE_CUDA_GEMM_PLAN_KEY_H_

// What decides which cuBLASLt algorithm a GEMM uses: its shape, element type,
// epilogue and math mode. The GEMM library asks cublasLtMatmulAlgoGetHeuristic
// once per distinct key and caches the answer (a transformer step repeats the
// same few dozen shapes thousands of times).

#include <cstdint>
#include <string>

#include "core/cuda/gemm_layout.h"
#include "core/dtype.h"

namespace trident::cuda {

// The fused epilogues of core/ops/linear.h, as cuBLASLt names them, or none
// (the plain products of core/ops/gemm.h).
enum class LtEpilogue : uint8_t {
  kNone,         // CUBLASLT_EPILOGUE_DEFAULT
  kBias,         // CUBLASLT_EPILOGUE_BIAS
  kBiasGeluAux,  // CUBLASLT_EPILOGUE_GELU_AUX_BIAS: y = GELU(pre), pre kept
  kBiasGradA,    // CUBLASLT_EPILOGUE_BGRADA: bias gradient of A (see gemm_layout.h)
};

// "none", "bias", "bias_gelu_aux", "bgrada".
const char* LtEpilogueName(LtEpilogue epilogue);

struct GemmPlanKey {
  // Shape, operand flags, leading dimensions and batch: everything the
  // matrix-layout descriptors are made from.
  LtGemmLayout layout;
  DType dtype = DType::kFloat32;
  LtEpilogue epilogue = LtEpilogue::kBias;
  // fp32 only: lets cuBLASLt use TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32).
  bool allow_tf32 = false;
  // The largest power of two (<= 256) dividing every operand's address:
  // cuBLASLt's fastest kernels need 256-byte operands, while views at an offset
  // (a tp shard's window) may only be 16-byte aligned.
  int alignment_bytes = 256;

  friend bool operator==(const GemmPlanKey&, const GemmPlanKey&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const GemmPlanKey& key) {
    return H::combine(std::move(h), key.layout, key.dtype, key.epilogue, key.allow_tf32,
                      key.alignment_bytes);
  }
};

// "m=768 n=1024 k=3072 A[...] B[...] D[...] bf16 bias_gelu_aux align 256"
// (LayoutToString, then the rest) for logs and errors.
std::string GemmPlanKeyToString(const GemmPlanKey& key);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_GEMM_PLAN_KEY_H_
