#include "core/cuda/attention/attention.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cuda/attention/flash_attention.h"
#include "core/status_macros.h"

namespace trident::cuda {

absl::string_view AttentionPathName(AttentionPath path) {
  return path == AttentionPath::kCudnn ? "cudnn" : "fallback";
}

absl::StatusOr<bool> ForceFallbackFromEnv(const char* value) {
  if (value == nullptr) return false;
  const absl::string_view v(value);
  if (v.empty() || v == "auto") return false;
  if (v == "fallback") return true;
  return absl::InvalidArgumentError(absl::StrCat(
      kAttentionEnvVar, " is \"", v, "\": must be \"auto\" (or unset) or \"fallback\""));
}

absl::StatusOr<std::unique_ptr<CudaAttention>> CudaAttention::Create(
    std::shared_ptr<Allocator> allocator, CudaAttentionOptions options) {
  ASSIGN_OR_RETURN(const bool env_fallback,
                   ForceFallbackFromEnv(std::getenv(std::string(kAttentionEnvVar).c_str())));
  if (allocator == nullptr || !allocator->device().is_cuda()) {
    return absl::InvalidArgumentError("CudaAttention needs an allocator of a CUDA device");
  }
  if (options.force_fallback || env_fallback) {
    return std::unique_ptr<CudaAttention>(new CudaAttention(
        nullptr, options.force_fallback ? "CudaAttentionOptions.force_fallback is set"
                                        : absl::StrCat(kAttentionEnvVar, "=fallback")));
  }
  absl::StatusOr<std::unique_ptr<CudnnSdpa>> cudnn = CudnnSdpa::Create(std::move(allocator));
  if (!cudnn.ok()) {
    return std::unique_ptr<CudaAttention>(
        new CudaAttention(nullptr, std::string(cudnn.status().message())));
  }
  return std::unique_ptr<CudaAttention>(new CudaAttention(*std::move(cudnn), ""));
}

CudaAttention::CudaAttention(std::unique_ptr<CudnnSdpa> cudnn, std::string cudnn_unavailable_reason)
    : cudnn_(std::move(cudnn)), cudnn_unavailable_reason_(std::move(cudnn_unavailable_reason)) {}

bool CudaAttention::UseCudnn(const SdpaPlanKey& key) const {
  return cudnn_ != nullptr &&
         CudnnSdpaSupports(key.shape, key.dtype, key.direction, cudnn_->version()).ok() &&
         !cudnn_refused_.contains(key);
}

absl::Status CudaAttention::AttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                             const Tensor& out, const Tensor& lse) {
  ASSIGN_OR_RETURN(const AttentionShape s,
                   CheckAttentionForwardArgs("AttentionForward", qkv, num_heads, out, lse));
  const SdpaPlanKey key{.shape = s, .dtype = qkv.dtype(), .direction = SdpaDirection::kForward};
  if (UseCudnn(key)) {
    const absl::Status status = cudnn_->AttentionForward(stream, qkv, num_heads, out, lse);
    if (status.ok()) {
      last_path_ = AttentionPath::kCudnn;
      return status;
    }
    // No engine for this graph: the fallback runs it, now and from now on.
    if (status.code() != absl::StatusCode::kUnimplemented) return status;
    cudnn_refused_.insert(key);
  }
  RETURN_IF_ERROR(FlashAttentionForward(stream, qkv, num_heads, out, lse));
  last_path_ = AttentionPath::kFallback;
  return absl::OkStatus();
}

absl::Status CudaAttention::AttentionBackward(cudaStream_t stream, const Tensor& qkv,
                                              const Tensor& out, const Tensor& lse,
                                              const Tensor& dout, int num_heads,
                                              const Tensor& dqkv) {
  ASSIGN_OR_RETURN(const AttentionShape s, CheckAttentionBackwardArgs("AttentionBackward", qkv, out,
                                                                      lse, dout, num_heads, dqkv));
  const SdpaPlanKey key{.shape = s, .dtype = qkv.dtype(), .direction = SdpaDirection::kBackward};
  if (UseCudnn(key)) {
    const absl::Status status =
        cudnn_->AttentionBackward(stream, qkv, out, lse, dout, num_heads, dqkv);
    if (status.ok()) {
      last_path_ = AttentionPath::kCudnn;
      return status;
    }
    if (status.code() != absl::StatusCode::kUnimplemented) return status;
    cudnn_refused_.insert(key);
  }
  RETURN_IF_ERROR(FlashAttentionBackward(stream, qkv, out, lse, dout, num_heads, dqkv));
  last_path_ = AttentionPath::kFallback;
  return absl::OkStatus();
}

}  // namespace trident::cuda
