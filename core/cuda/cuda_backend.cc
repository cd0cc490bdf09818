#include "core/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/check.h"
#include "core/cuda/ops/adamw.h"
#include "core/cuda/ops/cross_entropy.h"
#include "core/cuda/ops/elementwise.h"
#include "core/cuda/ops/embedding.h"
#include "core/cuda/ops/gelu.h"
#include "core/cuda/ops/layer_norm.h"
#include "core/cuda/ops/reduction.h"
#include "core/cuda/stream_release.h"
#include "core/ops/dispatch.h"

namespace trident::cuda {
namespace {

// A kernel's failure after the public op validated its operands is a bug or a
// device fault: abort naming the op, as the CPU backend's CHECKs do.
void CheckOk(const char* op, const absl::Status& status) {
  TRIDENT_CHECK(status.ok()) << "ops::" << op << " on CUDA: " << status.ToString();
}

template <typename T>
T ValueOrDie(const char* op, absl::StatusOr<T> value) {
  CheckOk(op, value.status());
  return *std::move(value);
}

// The context's stream, with the calling thread's current device made the
// context's (kernels launch on the current device; cudaGetDevice is a cheap
// host-side query, and other code such as the allocator may have switched it).
cudaStream_t StreamOf(const ExecContext& ctx, const char* op) {
  const int device = ctx.device().index;
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess || current != device) {
    const cudaError_t error = cudaSetDevice(device);
    TRIDENT_CHECK(error == cudaSuccess)
        << "ops::" << op << " on CUDA: cudaSetDevice(" << device << "): " << cudaGetErrorName(error)
        << " (" << cudaGetErrorString(error) << ")";
  }
  return static_cast<cudaStream_t>(ctx.stream());
}

}  // namespace

CudaBackend::StreamState& CudaBackend::StateFor(const ExecContext& ctx, const char* op) const {
  const std::pair<int, void*> key{ctx.device().index, ctx.stream()};
  absl::MutexLock lock(&mutex_);
  std::unique_ptr<StreamState>& state = states_[key];
  if (state == nullptr) {
    auto made = std::make_unique<StreamState>();
    made->gemm = ValueOrDie(op, LtGemm::Create(ctx.allocator()));
    made->attention = ValueOrDie(op, CudaAttention::Create(ctx.allocator()));
    state = std::move(made);
  }
  // The pointee stays put until ReleaseStream, which runs only once the
  // stream's one driving thread is done with it.
  return *state;
}

void CudaBackend::ReleaseStream(void* stream) const {
  absl::MutexLock lock(&mutex_);
  absl::erase_if(states_, [stream](const auto& entry) { return entry.first.second == stream; });
}

int64_t CudaBackend::streams_with_state() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int64_t>(states_.size());
}

void CudaBackend::Gemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a, const Tensor& b,
                       ops::Trans trans_b, const Tensor& c, float alpha, float beta) const {
  cudaStream_t stream = StreamOf(ctx, "Gemm");
  CheckOk("Gemm", StateFor(ctx, "Gemm").gemm->Gemm(stream, a, trans_a, b, trans_b, c, alpha, beta));
}

void CudaBackend::BatchedGemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a,
                              const Tensor& b, ops::Trans trans_b, const Tensor& c, float alpha,
                              float beta) const {
  // LtGemm::Gemm takes a 3-D batch as cuBLASLt's strided batch.
  cudaStream_t stream = StreamOf(ctx, "BatchedGemm");
  CheckOk("BatchedGemm",
          StateFor(ctx, "BatchedGemm").gemm->Gemm(stream, a, trans_a, b, trans_b, c, alpha, beta));
}

void CudaBackend::LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                                const Tensor& bias, ops::LinearEpilogue epilogue, const Tensor& y,
                                const Tensor& pre) const {
  cudaStream_t stream = StreamOf(ctx, "LinearForward");
  CheckOk("LinearForward", StateFor(ctx, "LinearForward")
                               .gemm->LinearForward(stream, x, weight, bias, epilogue, y, pre));
}

void CudaBackend::LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                   const Tensor& dweight, const Tensor& dbias) const {
  cudaStream_t stream = StreamOf(ctx, "LinearWeightGrad");
  CheckOk("LinearWeightGrad",
          StateFor(ctx, "LinearWeightGrad").gemm->LinearWeightGrad(stream, x, dy, dweight, dbias));
}

void CudaBackend::AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                                   const Tensor& out, const Tensor& lse) const {
  cudaStream_t stream = StreamOf(ctx, "AttentionForward");
  CheckOk("AttentionForward", StateFor(ctx, "AttentionForward")
                                  .attention->AttentionForward(stream, qkv, num_heads, out, lse));
}

void CudaBackend::AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout, int num_heads,
                                    const Tensor& dqkv) const {
  cudaStream_t stream = StreamOf(ctx, "AttentionBackward");
  CheckOk("AttentionBackward",
          StateFor(ctx, "AttentionBackward")
              .attention->AttentionBackward(stream, qkv, out, lse, dout, num_heads, dqkv));
}

double CudaBackend::Sum(const ExecContext& ctx, const Tensor& x) const {
  return ValueOrDie("Sum", ::trident::cuda::Sum(StreamOf(ctx, "Sum"), x));
}

double CudaBackend::SumOfSquares(const ExecContext& ctx, const Tensor& x) const {
  return ValueOrDie("SumOfSquares",
                    ::trident::cuda::SumOfSquares(StreamOf(ctx, "SumOfSquares"), x));
}

double CudaBackend::MultiTensorSum(const ExecContext& ctx,
                                   absl::Span<const Tensor> tensors) const {
  return ValueOrDie("MultiTensorSum", ::trident::cuda::MultiTensorSum(
                                          StreamOf(ctx, "MultiTensorSum"), tensors));
}

double CudaBackend::MultiTensorSumOfSquares(const ExecContext& ctx,
                                            absl::Span<const Tensor> tensors) const {
  return ValueOrDie("MultiTensorSumOfSquares",
                    ::trident::cuda::MultiTensorSumOfSquares(
                        StreamOf(ctx, "MultiTensorSumOfSquares"), tensors));
}

int64_t CudaBackend::CountTargets(const ExecContext& ctx, const Tensor& targets,
                                  int32_t ignore_index) const {
  return ValueOrDie("CountTargets", ::trident::cuda::CountTargets(StreamOf(ctx, "CountTargets"),
                                                                  targets, ignore_index));
}

void CudaBackend::Fill(const ExecContext& ctx, const Tensor& x, float value) const {
  CheckOk("Fill", ::trident::cuda::Fill(StreamOf(ctx, "Fill"), x, value));
}

void CudaBackend::Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) const {
  CheckOk("Copy", ::trident::cuda::Copy(StreamOf(ctx, "Copy"), src, dst));
}

void CudaBackend::Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                      const Tensor& out) const {
  CheckOk("Add", ::trident::cuda::Add(StreamOf(ctx, "Add"), a, b, out));
}

void CudaBackend::Axpy(const ExecContext& ctx, float alpha, const Tensor& x,
                       const Tensor& y) const {
  CheckOk("Axpy", ::trident::cuda::Axpy(StreamOf(ctx, "Axpy"), alpha, x, y));
}

void CudaBackend::Scale(const ExecContext& ctx, const Tensor& x, float alpha) const {
  CheckOk("Scale", ::trident::cuda::Scale(StreamOf(ctx, "Scale"), x, alpha));
}

void CudaBackend::BroadcastRows(const ExecContext& ctx, const Tensor& row,
                                const Tensor& out) const {
  CheckOk("BroadcastRows",
          ::trident::cuda::BroadcastRows(StreamOf(ctx, "BroadcastRows"), row, out));
}

void CudaBackend::BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) const {
  CheckOk("BiasAdd", ::trident::cuda::BiasAdd(StreamOf(ctx, "BiasAdd"), bias, x));
}

void CudaBackend::BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) const {
  CheckOk("BiasGrad", ::trident::cuda::BiasGrad(StreamOf(ctx, "BiasGrad"), dy, dbias));
}

void CudaBackend::LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                   const Tensor& beta, float epsilon, const Tensor& y,
                                   const Tensor& mean, const Tensor& rstd) const {
  CheckOk("LayerNormForward",
          ::trident::cuda::LayerNormForward(StreamOf(ctx, "LayerNormForward"), x, gamma, beta,
                                            epsilon, y, mean, rstd));
}

void CudaBackend::LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                         const Tensor& gamma, const Tensor& mean,
                                         const Tensor& rstd, const Tensor& dy,
                                         const Tensor& dx) const {
  CheckOk("LayerNormBackwardInput",
          ::trident::cuda::LayerNormBackwardInput(StreamOf(ctx, "LayerNormBackwardInput"), x, gamma,
                                                  mean, rstd, dy, dx));
}

void CudaBackend::AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                      const Tensor& gamma, const Tensor& beta, float epsilon,
                                      const Tensor& sum, const Tensor& y, const Tensor& mean,
                                      const Tensor& rstd) const {
  CheckOk("AddLayerNormForward",
          ::trident::cuda::AddLayerNormForward(StreamOf(ctx, "AddLayerNormForward"), a, b, gamma,
                                               beta, epsilon, sum, y, mean, rstd));
}

void CudaBackend::AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                            const Tensor& gamma, const Tensor& mean,
                                            const Tensor& rstd, const Tensor& dy,
                                            const Tensor& d_residual, const Tensor& dx) const {
  CheckOk("AddLayerNormBackwardInput",
          ::trident::cuda::AddLayerNormBackwardInput(StreamOf(ctx, "AddLayerNormBackwardInput"), x,
                                                     gamma, mean, rstd, dy, d_residual, dx));
}

void CudaBackend::LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x,
                                           const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                           const Tensor& dgamma, const Tensor& dbeta) const {
  CheckOk("LayerNormBackwardWeights",
          ::trident::cuda::LayerNormBackwardWeights(StreamOf(ctx, "LayerNormBackwardWeights"), x,
                                                    mean, rstd, dy, dgamma, dbeta));
}

void CudaBackend::GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const {
  CheckOk("GeluForward", ::trident::cuda::GeluForward(StreamOf(ctx, "GeluForward"), x, y));
}

void CudaBackend::GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                               const Tensor& dx) const {
  CheckOk("GeluBackward", ::trident::cuda::GeluBackward(StreamOf(ctx, "GeluBackward"), x, dy, dx));
}

void CudaBackend::GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table,
                             int64_t row_start, ops::OutOfRangeIds policy,
                             const Tensor& out) const {
  CheckOk("GatherRows", ::trident::cuda::GatherRows(StreamOf(ctx, "GatherRows"), ids, table,
                                                    row_start, policy, out));
}

void CudaBackend::ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                                 int64_t row_start, ops::OutOfRangeIds policy,
                                 const Tensor& dtable) const {
  CheckOk("ScatterAddRows", ::trident::cuda::ScatterAddRows(StreamOf(ctx, "ScatterAddRows"), ids,
                                                            dout, row_start, policy, dtable));
}

void CudaBackend::AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                                       const Tensor& out) const {
  CheckOk("AddPositionEmbedding",
          ::trident::cuda::AddPositionEmbedding(StreamOf(ctx, "AddPositionEmbedding"), wpe, out));
}

void CudaBackend::PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                                        const Tensor& dwpe) const {
  CheckOk("PositionEmbeddingGrad", ::trident::cuda::PositionEmbeddingGrad(
                                       StreamOf(ctx, "PositionEmbeddingGrad"), dout, dwpe));
}

void CudaBackend::RowMax(const ExecContext& ctx, const Tensor& logits,
                         const ops::CrossEntropyOptions& options, const Tensor& row_max) const {
  CheckOk("RowMax", ::trident::cuda::RowMax(StreamOf(ctx, "RowMax"), logits, options, row_max));
}

void CudaBackend::RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                            const ops::CrossEntropyOptions& options, const Tensor& sum_exp) const {
  CheckOk("RowSumExp", ::trident::cuda::RowSumExp(StreamOf(ctx, "RowSumExp"), logits, row_max,
                                                  options, sum_exp));
}

void CudaBackend::TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                              const ops::CrossEntropyOptions& options,
                              const Tensor& target_logit) const {
  CheckOk("TargetLogit", ::trident::cuda::TargetLogit(StreamOf(ctx, "TargetLogit"), logits, targets,
                                                      options, target_logit));
}

void CudaBackend::CrossEntropyForward(const ExecContext& ctx, const Tensor& logits,
                                      const Tensor& targets,
                                      const ops::CrossEntropyOptions& options, const Tensor& losses,
                                      const Tensor& logsumexp) const {
  CheckOk("CrossEntropyForward",
          ::trident::cuda::CrossEntropyForward(StreamOf(ctx, "CrossEntropyForward"), logits,
                                               targets, options, losses, logsumexp));
}

void CudaBackend::CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits,
                                       const Tensor& targets, const Tensor& logsumexp,
                                       float grad_scale, const ops::CrossEntropyOptions& options,
                                       const Tensor& dlogits) const {
  CheckOk("CrossEntropyBackward",
          ::trident::cuda::CrossEntropyBackward(StreamOf(ctx, "CrossEntropyBackward"), logits,
                                                targets, logsumexp, grad_scale, options, dlogits));
}

void CudaBackend::CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                           const Tensor& sum_exp, const Tensor& target_logit,
                                           const Tensor& targets, int32_t ignore_index,
                                           const Tensor& losses, const Tensor& logsumexp) const {
  CheckOk("CombineCrossEntropyParts",
          ::trident::cuda::CombineCrossEntropyParts(StreamOf(ctx, "CombineCrossEntropyParts"),
                                                    row_max, sum_exp, target_logit, targets,
                                                    ignore_index, losses, logsumexp));
}

void CudaBackend::AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                            const Tensor& exp_avg, const Tensor& exp_avg_sq,
                            const ops::AdamWOptions& options, ops::WeightDecay decay) const {
  CheckOk("AdamWStep", ::trident::cuda::AdamWStep(StreamOf(ctx, "AdamWStep"), param, grad, exp_avg,
                                                  exp_avg_sq, options, decay));
}

const CudaBackend& RegisteredCudaBackend() {
  static const CudaBackend* backend = new CudaBackend();  // Never destroyed: see below.
  return *backend;
}

namespace {

// Registration at start-up, without touching CUDA (a machine without a GPU
// runs CPU work in the same binary). The backend is never destroyed: its
// per-stream state holds device memory that must not be freed after the CUDA
// runtime has shut down at exit.
const bool registered = [] {
  ops::RegisterBackend(DeviceType::kCuda, &RegisteredCudaBackend());
  AddStreamReleaseHook([](void* stream) { RegisteredCudaBackend().ReleaseStream(stream); });
  return true;
}();

}  // namespace
}  // namespace trident::cuda
