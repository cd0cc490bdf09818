#ifndef TRIDENT_CORE_CUDA_CUDA_BACKEND_H_
#define TRIDENT_CORE_CUDA_CUDA_BACKEND_H_

// The CUDA implementation of core/ops/backend.h: every method calls the kernel
// of the same name in core/cuda/ (ops/*.h, cublaslt_gemm.h,
// attention/attention.h) on the context's stream, static_cast from
// ExecContext::stream(). Linking //core/cuda:cuda_backend registers it for
// DeviceType::kCuda (alwayslink); CPU-only builds never see it.
//
// Errors: the public op has validated its operands before it reaches a
// backend, so a kernel's failed status here is a programming error (or a
// device fault): the backend aborts naming the op and the status, as the CPU
// backend does with its CHECKs. No status is ignored.
//
// Per-stream state: cuBLASLt plans and workspace (LtGemm) and attention plans
// (CudaAttention) are made lazily for each (device, stream) on first use,
// under a mutex, and dropped when a CudaContext destroys its stream
// (stream_release.h). The workspace comes from the allocator of the first
// context seen on that stream (contexts that differ only by WithAllocator
// share it). Each is used by the one thread that drives its stream: one rank
// thread per device and stream is safe; two threads sharing one stream are
// not.
//
// The current device of the calling thread is set to the context's device
// before each launch, so a rank thread needs no cudaSetDevice of its own.

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/cuda/attention/attention.h"
#include "core/cuda/cublaslt_gemm.h"
#include "core/ops/backend.h"

namespace trident::cuda {

class CudaBackend final : public ops::Backend {
 public:
  CudaBackend() = default;
  absl::string_view name() const override { return "cuda"; }

  void Gemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a, const Tensor& b,
            ops::Trans trans_b, const Tensor& c, float alpha, float beta) const override;
  void BatchedGemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a, const Tensor& b,
                   ops::Trans trans_b, const Tensor& c, float alpha, float beta) const override;

  void LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                     const Tensor& bias, ops::LinearEpilogue epilogue, const Tensor& y,
                     const Tensor& pre) const override;
  void LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                        const Tensor& dweight, const Tensor& dbias) const override;

  void Fill(const ExecContext& ctx, const Tensor& x, float value) const override;
  void Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) const override;
  void Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
           const Tensor& out) const override;
  void Axpy(const ExecContext& ctx, float alpha, const Tensor& x, const Tensor& y) const override;
  void Scale(const ExecContext& ctx, const Tensor& x, float alpha) const override;
  void BroadcastRows(const ExecContext& ctx, const Tensor& row, const Tensor& out) const override;
  void BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) const override;
  void BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) const override;

  double Sum(const ExecContext& ctx, const Tensor& x) const override;
  double SumOfSquares(const ExecContext& ctx, const Tensor& x) const override;
  double MultiTensorSum(const ExecContext& ctx,
                        absl::Span<const Tensor> tensors) const override;
  double MultiTensorSumOfSquares(const ExecContext& ctx,
                                 absl::Span<const Tensor> tensors) const override;

  void LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                        const Tensor& beta, float epsilon, const Tensor& y, const Tensor& mean,
                        const Tensor& rstd) const override;
  void LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                              const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                              const Tensor& dx) const override;
  void AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                           const Tensor& gamma, const Tensor& beta, float epsilon,
                           const Tensor& sum, const Tensor& y, const Tensor& mean,
                           const Tensor& rstd) const override;
  void AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                 const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                 const Tensor& d_residual, const Tensor& dx) const override;
  void LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& mean,
                                const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                                const Tensor& dbeta) const override;

  void GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const override;
  void GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                    const Tensor& dx) const override;

  void AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads, const Tensor& out,
                        const Tensor& lse) const override;
  void AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                         const Tensor& lse, const Tensor& dout, int num_heads,
                         const Tensor& dqkv) const override;

  void GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table, int64_t row_start,
                  ops::OutOfRangeIds policy, const Tensor& out) const override;
  void ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                      int64_t row_start, ops::OutOfRangeIds policy,
                      const Tensor& dtable) const override;
  void AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                            const Tensor& out) const override;
  void PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                             const Tensor& dwpe) const override;

  void RowMax(const ExecContext& ctx, const Tensor& logits, const ops::CrossEntropyOptions& options,
              const Tensor& row_max) const override;
  void RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                 const ops::CrossEntropyOptions& options, const Tensor& sum_exp) const override;
  void TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                   const ops::CrossEntropyOptions& options,
                   const Tensor& target_logit) const override;
  void CrossEntropyForward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                           const ops::CrossEntropyOptions& options, const Tensor& losses,
                           const Tensor& logsumexp) const override;
  void CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                            const Tensor& logsumexp, float grad_scale,
                            const ops::CrossEntropyOptions& options,
                            const Tensor& dlogits) const override;
  void CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                const Tensor& sum_exp, const Tensor& target_logit,
                                const Tensor& targets, int32_t ignore_index, const Tensor& losses,
                                const Tensor& logsumexp) const override;
  int64_t CountTargets(const ExecContext& ctx, const Tensor& targets,
                       int32_t ignore_index) const override;

  void AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                 const Tensor& exp_avg, const Tensor& exp_avg_sq, const ops::AdamWOptions& options,
                 ops::WeightDecay decay) const override;

  // Drops the state of `stream` (its stream-release hook calls this).
  void ReleaseStream(void* stream) const;
  // (device, stream) pairs holding state now: tests check lazy creation and
  // release.
  int64_t streams_with_state() const;

 private:
  // What one (device, stream) keeps between calls.
  struct StreamState {
    std::unique_ptr<LtGemm> gemm;
    std::unique_ptr<CudaAttention> attention;
  };

  // The state of ctx's (device, stream), made on first use with ctx's
  // allocator. Aborts naming `op` when it cannot be made.
  StreamState& StateFor(const ExecContext& ctx, const char* op) const;

  mutable absl::Mutex mutex_;
  mutable absl::flat_hash_map<std::pair<int, void*>, std::unique_ptr<StreamState>> states_
      ABSL_GUARDED_BY(mutex_);
};

// The registered backend (the one BackendFor(ctx) returns for CUDA contexts).
const CudaBackend& RegisteredCudaBackend();

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_CUDA_BACKEND_H_
