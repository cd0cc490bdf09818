#ifndef TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_H_
#define TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_H_

// The CUDA backend's AttentionForward / AttentionBackward (core/ops/attention.h
// semantics, core/ops/backend.h's argument order with a stream first): cuDNN's
// fused attention (cudnn_sdpa.h) for bf16/fp16 where cuDNN runs the shape, the
// fallback flash kernels (flash_attention.h) for fp32 and everything else.
//
// The fallback can be forced for a whole process with the environment variable
// TRIDENT_CUDA_ATTENTION=fallback (or CudaAttentionOptions.force_fallback):
// tests and debugging compare the two paths on one build.

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/cuda/attention/attention_shape.h"
#include "core/cuda/attention/cudnn_sdpa.h"
#include "core/device.h"
#include "core/tensor.h"

namespace trident::cuda {

// The environment variable that chooses the attention implementation.
inline constexpr absl::string_view kAttentionEnvVar = "TRIDENT_CUDA_ATTENTION";

enum class AttentionPath { kCudnn, kFallback };

// "cudnn" or "fallback".
absl::string_view AttentionPathName(AttentionPath path);

// The value of TRIDENT_CUDA_ATTENTION (null or empty: unset) as "force the
// fallback?": "auto" or unset -> false, "fallback" -> true; anything else
// INVALID_ARGUMENT naming the variable, the value and the accepted values.
absl::StatusOr<bool> ForceFallbackFromEnv(const char* value);

struct CudaAttentionOptions {
  bool force_fallback = false;
};

class CudaAttention {
 public:
  // Reads TRIDENT_CUDA_ATTENTION first (refusing a bad value by name, with or
  // without a GPU); creates the cuDNN
  // path unless the fallback is forced. A cuDNN that cannot be used (too old,
  // no handle) is not an error: every call then takes the fallback, and
  // cudnn_unavailable_reason() says why.
  static absl::StatusOr<std::unique_ptr<CudaAttention>> Create(std::shared_ptr<Allocator> allocator,
                                                               CudaAttentionOptions options = {});

  absl::Status AttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                const Tensor& out, const Tensor& lse);
  absl::Status AttentionBackward(cudaStream_t stream, const Tensor& qkv, const Tensor& out,
                                 const Tensor& lse, const Tensor& dout, int num_heads,
                                 const Tensor& dqkv);

  // Which implementation ran the last successful call.
  AttentionPath last_path() const { return last_path_; }
  // Empty while the cuDNN path is in use for the dtypes it supports.
  const std::string& cudnn_unavailable_reason() const { return cudnn_unavailable_reason_; }

 private:
  CudaAttention(std::unique_ptr<CudnnSdpa> cudnn, std::string cudnn_unavailable_reason);

  // Whether cuDNN takes `key` (its rules, and no earlier refusal of the key).
  bool UseCudnn(const SdpaPlanKey& key) const;

  std::unique_ptr<CudnnSdpa> cudnn_;  // null: fallback only
  std::string cudnn_unavailable_reason_;
  // Keys for which cuDNN found no engine: not asked again.
  absl::flat_hash_set<SdpaPlanKey> cudnn_refused_;
  AttentionPath last_path_ = AttentionPath::kFallback;
};

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_H_
