#ifndef TRIDENT_CORE_CUDA_ATTENTION_CUDNN_SDPA_H_
#define TRIDENT_CORE_CUDA_ATTENTION_CUDNN_SDPA_H_

// Causal attention (core/ops/attention.h) as cuDNN's fused flash attention,
// through cuDNN's C backend ("graph") API, forward and backward, bf16/fp16.
//
// cuDNN 9.19's single SDPA operation descriptors cannot express a causal mask
// (that needs their score-modifier subgraph, cuDNN 9.21), so each direction is
// the operation graph that cuDNN's runtime fusion engines recognise as
// attention (the graph cudnn-frontend builds):
//   forward:  S = Q K^T; S *= scale; S = select(row >= col, S, -inf);
//             m = rowmax S; E = e^(S - m); l = rowsum E; Stats = m + log l;
//             P = E / l (stored as bf16/fp16); O = P V
//   backward: Delta = rowsum(dO * O) (fp32, in our workspace);
//             P = e^(select(row >= col, scale Q K^T - Stats, -inf));
//             dV = P^T dO; dS = P (dO V^T - Delta) scale;
//             dK = dS^T Q; dQ_acc = dS K (fp32, in our workspace); dQ = dQ_acc
// Q, K, V, dQ, dK, dV are strided [B, H, T, D] views into the packed qkv/dqkv
// (attention_shape.h) and Stats is lse viewed as [B, H, T, 1]: no copies.
// Stats is the natural-log log-sum-exp of the scaled scores, exactly lse.
//
// Unlike the fallback kernel, cuDNN's backward is not bitwise deterministic: it
// accumulates dQ across key tiles with fp32 atomics.
//
// Each graph is built, its engine chosen (heuristics mode A, the first config
// that finalises) and its execution plan finalised once per SdpaPlanKey and
// cached. One workspace, grown to the largest plan's need (plus the backward's
// fp32 Delta and dQ accumulator), serves every call; calls must be ordered on
// one stream (the workspace is reused by the next call). Not thread-safe: one
// per stream/thread, like LtGemm.

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/cuda/attention/attention_shape.h"
#include "core/device.h"
#include "core/tensor.h"

namespace trident::cuda {

// The oldest cuDNN whose runtime fusion engines run these graphs as we build
// them (dQ accumulator zeroed by cuDNN from 9.6; we zero it anyway).
inline constexpr int64_t kMinCudnnVersionForSdpa = 90000;

// OK when cuDNN can run attention of `shape` stored as `dtype` with the
// version `cudnn_version` (cudnnGetVersion()'s 91900 for 9.19.0), else
// UNIMPLEMENTED naming the rule: dtype bf16 or fp16; head_dim a multiple of 8
// (16-byte rows) and <= 128; cuDNN >= 9.0; and for the backward on cuDNN <=
// 9.15, T a multiple of 128 (those versions needed a padding-mask workaround
// for other lengths that this graph does not build). Pure host logic.
absl::Status CudnnSdpaSupports(const AttentionShape& shape, DType dtype, SdpaDirection direction,
                               int64_t cudnn_version);

// Builds and finalises every tensor and operation descriptor of `key`'s graph
// without a handle or a device: cuDNN's own checks of the graph's structure
// (attribute types, each operation's operand shapes and types), which run even
// where no GPU is. Engines are chosen only by a CudnnSdpa, on a GPU.
absl::Status CheckCudnnSdpaGraph(const SdpaPlanKey& key);

class CudnnSdpa {
 public:
  // A cuDNN handle on `allocator`'s device (which gives the workspace).
  // FAILED_PRECONDITION when the loaded cuDNN is older than
  // kMinCudnnVersionForSdpa, naming both versions.
  static absl::StatusOr<std::unique_ptr<CudnnSdpa>> Create(std::shared_ptr<Allocator> allocator);
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  // The semantics of ops::AttentionForward / AttentionBackward (the backward
  // overwrites dqkv). INVALID_ARGUMENT for bad arguments (attention_shape.h),
  // UNIMPLEMENTED for what CudnnSdpaSupports refuses, INTERNAL with cuDNN's
  // error string when cuDNN fails (no engine takes the graph, say).
  absl::Status AttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                const Tensor& out, const Tensor& lse);
  absl::Status AttentionBackward(cudaStream_t stream, const Tensor& qkv, const Tensor& out,
                                 const Tensor& lse, const Tensor& dout, int num_heads,
                                 const Tensor& dqkv);

  // The loaded library's cudnnGetVersion().
  int64_t version() const { return version_; }
  // Distinct plans built so far (one graph + heuristic query + finalize each).
  int64_t cached_plans() const { return static_cast<int64_t>(plans_.size()); }

 private:
  struct Plan;
  CudnnSdpa(std::shared_ptr<Allocator> allocator, void* handle, int64_t version);

  absl::StatusOr<Plan*> PlanFor(const SdpaPlanKey& key);
  // The workspace, at least `bytes` long (re-allocated when short).
  absl::StatusOr<void*> Workspace(int64_t bytes);
  absl::Status Execute(cudaStream_t stream, Plan& plan, const void* const* tensor_pointers);

  std::shared_ptr<Allocator> allocator_;
  void* handle_;  // cudnnHandle_t, kept out of this header
  int64_t version_;
  Tensor workspace_;
  absl::flat_hash_map<SdpaPlanKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ATTENTION_CUDNN_SDPA_H_
