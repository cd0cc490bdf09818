#include "bench/gpu_gpt2/op_class_timer.h"

#include <cuda_runtime.h>

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace trident::bench {
namespace {

cudaEvent_t AsEvent(void* event) { return static_cast<cudaEvent_t>(event); }

}  // namespace

absl::string_view OpClassName(OpClass op_class) {
  switch (op_class) {
    case OpClass::kGemm:
      return "GEMMs";
    case OpClass::kAttention:
      return "attention";
    case OpClass::kPointwise:
      return "LayerNorm/GELU/cross-entropy/elementwise";
    case OpClass::kAdamW:
      return "AdamW";
  }
  return "?";
}

OpClassTimer::~OpClassTimer() {
  absl::MutexLock lock(&mu_);
  for (const Pair& pair : pending_) {
    cudaEventDestroy(AsEvent(pair.start));
    cudaEventDestroy(AsEvent(pair.stop));
  }
  for (void* event : free_events_) cudaEventDestroy(AsEvent(event));
}

void* OpClassTimer::TakeEvent() const {
  if (!free_events_.empty()) {
    void* event = free_events_.back();
    free_events_.pop_back();
    return event;
  }
  cudaEvent_t event = nullptr;
  const cudaError_t error = cudaEventCreate(&event);
  TRIDENT_CHECK(error == cudaSuccess) << "cudaEventCreate: " << cudaGetErrorString(error);
  return event;
}

template <typename Call>
auto OpClassTimer::Timed(OpClass op_class, const ExecContext& ctx, Call call) const {
  const auto stream = static_cast<cudaStream_t>(ctx.stream());
  void* start;
  void* stop;
  {
    absl::MutexLock lock(&mu_);
    start = TakeEvent();
    stop = TakeEvent();
  }
  cudaEventRecord(AsEvent(start), stream);
  const auto record_stop = [&] {
    cudaEventRecord(AsEvent(stop), stream);
    absl::MutexLock lock(&mu_);
    pending_.push_back({op_class, start, stop});
  };
  if constexpr (std::is_void_v<decltype(call())>) {
    call();
    record_stop();
  } else {
    auto result = call();
    record_stop();
    return result;
  }
}

absl::Status OpClassTimer::Collect() {
  absl::MutexLock lock(&mu_);
  for (const Pair& pair : pending_) {
    if (const cudaError_t error = cudaEventSynchronize(AsEvent(pair.stop)); error != cudaSuccess) {
      return absl::UnavailableError(
          absl::StrCat("cudaEventSynchronize: ", cudaGetErrorString(error)));
    }
    float ms = 0;
    if (const cudaError_t error =
            cudaEventElapsedTime(&ms, AsEvent(pair.start), AsEvent(pair.stop));
        error != cudaSuccess) {
      return absl::UnavailableError(
          absl::StrCat("cudaEventElapsedTime: ", cudaGetErrorString(error)));
    }
    milliseconds_[static_cast<int>(pair.op_class)] += ms;
    ++calls_[static_cast<int>(pair.op_class)];
    free_events_.push_back(pair.start);
    free_events_.push_back(pair.stop);
  }
  pending_.clear();
  return absl::OkStatus();
}

std::array<double, kNumOpClasses> OpClassTimer::milliseconds() const {
  absl::MutexLock lock(&mu_);
  return milliseconds_;
}

std::array<int64_t, kNumOpClasses> OpClassTimer::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

void OpClassTimer::Reset() {
  absl::MutexLock lock(&mu_);
  milliseconds_ = {};
  calls_ = {};
}

// Every method: its class, then the wrapped backend's.

void OpClassTimer::Gemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a,
                        const Tensor& b, ops::Trans trans_b, const Tensor& c, float alpha,
                        float beta) const {
  Timed(OpClass::kGemm, ctx,
        [&] { return inner_.Gemm(ctx, a, trans_a, b, trans_b, c, alpha, beta); });
}

void OpClassTimer::BatchedGemm(const ExecContext& ctx, const Tensor& a, ops::Trans trans_a,
                               const Tensor& b, ops::Trans trans_b, const Tensor& c, float alpha,
                               float beta) const {
  Timed(OpClass::kGemm, ctx,
        [&] { return inner_.BatchedGemm(ctx, a, trans_a, b, trans_b, c, alpha, beta); });
}

void OpClassTimer::LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                                 const Tensor& bias, ops::LinearEpilogue epilogue, const Tensor& y,
                                 const Tensor& pre) const {
  Timed(OpClass::kGemm, ctx,
        [&] { return inner_.LinearForward(ctx, x, weight, bias, epilogue, y, pre); });
}

void OpClassTimer::LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                    const Tensor& dweight, const Tensor& dbias) const {
  Timed(OpClass::kGemm, ctx, [&] { return inner_.LinearWeightGrad(ctx, x, dy, dweight, dbias); });
}

void OpClassTimer::Fill(const ExecContext& ctx, const Tensor& x, float value) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.Fill(ctx, x, value); });
}

void OpClassTimer::Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.Copy(ctx, src, dst); });
}

void OpClassTimer::Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                       const Tensor& out) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.Add(ctx, a, b, out); });
}

void OpClassTimer::Axpy(const ExecContext& ctx, float alpha, const Tensor& x,
                        const Tensor& y) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.Axpy(ctx, alpha, x, y); });
}

void OpClassTimer::Scale(const ExecContext& ctx, const Tensor& x, float alpha) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.Scale(ctx, x, alpha); });
}

void OpClassTimer::BroadcastRows(const ExecContext& ctx, const Tensor& row,
                                 const Tensor& out) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.BroadcastRows(ctx, row, out); });
}

void OpClassTimer::BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.BiasAdd(ctx, bias, x); });
}

void OpClassTimer::BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.BiasGrad(ctx, dy, dbias); });
}

double OpClassTimer::Sum(const ExecContext& ctx, const Tensor& x) const {
  return Timed(OpClass::kPointwise, ctx, [&] { return inner_.Sum(ctx, x); });
}

double OpClassTimer::SumOfSquares(const ExecContext& ctx, const Tensor& x) const {
  return Timed(OpClass::kPointwise, ctx, [&] { return inner_.SumOfSquares(ctx, x); });
}

double OpClassTimer::MultiTensorSum(const ExecContext& ctx,
                                    absl::Span<const Tensor> tensors) const {
  return Timed(OpClass::kPointwise, ctx, [&] { return inner_.MultiTensorSum(ctx, tensors); });
}

double OpClassTimer::MultiTensorSumOfSquares(const ExecContext& ctx,
                                             absl::Span<const Tensor> tensors) const {
  return Timed(OpClass::kPointwise, ctx,
               [&] { return inner_.MultiTensorSumOfSquares(ctx, tensors); });
}

void OpClassTimer::LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                    const Tensor& beta, float epsilon, const Tensor& y,
                                    const Tensor& mean, const Tensor& rstd) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.LayerNormForward(ctx, x, gamma, beta, epsilon, y, mean, rstd); });
}

void OpClassTimer::LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                          const Tensor& gamma, const Tensor& mean,
                                          const Tensor& rstd, const Tensor& dy,
                                          const Tensor& dx) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.LayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, dx); });
}

void OpClassTimer::AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                       const Tensor& gamma, const Tensor& beta, float epsilon,
                                       const Tensor& sum, const Tensor& y, const Tensor& mean,
                                       const Tensor& rstd) const {
  Timed(OpClass::kPointwise, ctx, [&] {
    return inner_.AddLayerNormForward(ctx, a, b, gamma, beta, epsilon, sum, y, mean, rstd);
  });
}

void OpClassTimer::AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                             const Tensor& gamma, const Tensor& mean,
                                             const Tensor& rstd, const Tensor& dy,
                                             const Tensor& d_residual, const Tensor& dx) const {
  Timed(OpClass::kPointwise, ctx, [&] {
    return inner_.AddLayerNormBackwardInput(ctx, x, gamma, mean, rstd, dy, d_residual, dx);
  });
}

void OpClassTimer::LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x,
                                            const Tensor& mean, const Tensor& rstd,
                                            const Tensor& dy, const Tensor& dgamma,
                                            const Tensor& dbeta) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.LayerNormBackwardWeights(ctx, x, mean, rstd, dy, dgamma, dbeta); });
}

void OpClassTimer::GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.GeluForward(ctx, x, y); });
}

void OpClassTimer::GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                const Tensor& dx) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.GeluBackward(ctx, x, dy, dx); });
}

void OpClassTimer::AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                                    const Tensor& out, const Tensor& lse) const {
  Timed(OpClass::kAttention, ctx,
        [&] { return inner_.AttentionForward(ctx, qkv, num_heads, out, lse); });
}

void OpClassTimer::AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                                     const Tensor& lse, const Tensor& dout, int num_heads,
                                     const Tensor& dqkv) const {
  Timed(OpClass::kAttention, ctx,
        [&] { return inner_.AttentionBackward(ctx, qkv, out, lse, dout, num_heads, dqkv); });
}

void OpClassTimer::GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table,
                              int64_t row_start, ops::OutOfRangeIds policy,
                              const Tensor& out) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.GatherRows(ctx, ids, table, row_start, policy, out); });
}

void OpClassTimer::ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                                  int64_t row_start, ops::OutOfRangeIds policy,
                                  const Tensor& dtable) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.ScatterAddRows(ctx, ids, dout, row_start, policy, dtable); });
}

void OpClassTimer::AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                                        const Tensor& out) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.AddPositionEmbedding(ctx, wpe, out); });
}

void OpClassTimer::PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                                         const Tensor& dwpe) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.PositionEmbeddingGrad(ctx, dout, dwpe); });
}

void OpClassTimer::RowMax(const ExecContext& ctx, const Tensor& logits,
                          const ops::CrossEntropyOptions& options, const Tensor& row_max) const {
  Timed(OpClass::kPointwise, ctx, [&] { return inner_.RowMax(ctx, logits, options, row_max); });
}

void OpClassTimer::RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                             const ops::CrossEntropyOptions& options, const Tensor& sum_exp) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.RowSumExp(ctx, logits, row_max, options, sum_exp); });
}

void OpClassTimer::TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                               const ops::CrossEntropyOptions& options,
                               const Tensor& target_logit) const {
  Timed(OpClass::kPointwise, ctx,
        [&] { return inner_.TargetLogit(ctx, logits, targets, options, target_logit); });
}

void OpClassTimer::CrossEntropyForward(const ExecContext& ctx, const Tensor& logits,
                                       const Tensor& targets,
                                       const ops::CrossEntropyOptions& options,
                                       const Tensor& losses, const Tensor& logsumexp) const {
  Timed(OpClass::kPointwise, ctx, [&] {
    return inner_.CrossEntropyForward(ctx, logits, targets, options, losses, logsumexp);
  });
}

void OpClassTimer::CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits,
                                        const Tensor& targets, const Tensor& logsumexp,
                                        float grad_scale, const ops::CrossEntropyOptions& options,
                                        const Tensor& dlogits) const {
  Timed(OpClass::kPointwise, ctx, [&] {
    return inner_.CrossEntropyBackward(ctx, logits, targets, logsumexp, grad_scale, options,
                                       dlogits);
  });
}

void OpClassTimer::CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                            const Tensor& sum_exp, const Tensor& target_logit,
                                            const Tensor& targets, int32_t ignore_index,
                                            const Tensor& losses, const Tensor& logsumexp) const {
  Timed(OpClass::kPointwise, ctx, [&] {
    return inner_.CombineCrossEntropyParts(ctx, row_max, sum_exp, target_logit, targets,
                                           ignore_index, losses, logsumexp);
  });
}

int64_t OpClassTimer::CountTargets(const ExecContext& ctx, const Tensor& targets,
                                   int32_t ignore_index) const {
  return Timed(OpClass::kPointwise, ctx,
               [&] { return inner_.CountTargets(ctx, targets, ignore_index); });
}

void OpClassTimer::AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                             const Tensor& exp_avg, const Tensor& exp_avg_sq,
                             const ops::AdamWOptions& options, ops::WeightDecay decay) const {
  Timed(OpClass::kAdamW, ctx,
        [&] { return inner_.AdamWStep(ctx, param, grad, exp_avg, exp_avg_sq, options, decay); });
}

}  // namespace trident::bench
