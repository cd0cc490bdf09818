#ifndef TRIDENT_BENCH_GPU_GPT2_OP_CLASS_TIMER_H_
#define TRIDENT_BENCH_GPU_GPT2_OP_CLASS_TIMER_H_

// GPU time by op class without touching the ops or the backend: a Backend
// decorator, registered for CUDA in place of the backend it wraps, that records
// a CUDA event on the op's stream before and after each call it forwards, and
// sums the pairs' elapsed times by class once they have run. Each pair brackets
// exactly the kernels that call queued (the stream runs them in order), so
// host gaps between ops (launches, host syncs) fall outside every class: the
// step's time minus the classes' sum is that overhead.

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/ops/backend.h"

namespace trident::bench {

enum class OpClass : int { kGemm = 0, kAttention, kPointwise, kAdamW };
inline constexpr int kNumOpClasses = 4;

// "GEMMs", "attention", "LayerNorm/GELU/cross-entropy/elementwise", "AdamW".
absl::string_view OpClassName(OpClass op_class);

class OpClassTimer final : public ops::Backend {
 public:
  // `inner` (the registered CUDA backend) must outlive this timer.
  explicit OpClassTimer(const ops::Backend& inner) : inner_(inner) {}
  ~OpClassTimer() override;

  // Waits for every recorded pair, adds its time to its class and recycles
  // the events. UNAVAILABLE with CUDA's error if an event fails.
  absl::Status Collect();
  // Milliseconds per class collected since the last Reset(), and the calls.
  std::array<double, kNumOpClasses> milliseconds() const;
  std::array<int64_t, kNumOpClasses> calls() const;
  void Reset();

  absl::string_view name() const override { return "op-class timer"; }

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

 private:
  struct Pair {
    OpClass op_class;
    void* start;  // cudaEvent_t (kept out of this header).
    void* stop;
  };
  // Records `start` on ctx's stream, runs `call`, records `stop`.
  template <typename Call>
  auto Timed(OpClass op_class, const ExecContext& ctx, Call call) const;
  void* TakeEvent() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ops::Backend& inner_;
  mutable absl::Mutex mu_;
  mutable std::vector<Pair> pending_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<void*> free_events_ ABSL_GUARDED_BY(mu_);
  std::array<double, kNumOpClasses> milliseconds_ ABSL_GUARDED_BY(mu_) = {};
  std::array<int64_t, kNumOpClasses> calls_ ABSL_GUARDED_BY(mu_) = {};
};

}  // namespace trident::bench

#endif  // TRIDENT_BENCH_GPU_GPT2_OP_CLASS_TIMER_H_
