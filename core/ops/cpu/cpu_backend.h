#ifndef TRIDENT_CORE_OPS_CPU_CPU_BACKEND_H_
#define TRIDENT_CORE_OPS_CPU_CPU_BACKEND_H_

// The CPU kernels behind the ops: fp32 compute (16-bit float tensors are
// refused with a CHECK naming the op; the dispatch registers this backend
// inside Float16StorageBackend, core/ops/cpu/float16_storage.h, which hands it
// fp32 copies of 16-bit operands), OpenBLAS for GEMMs, vectorisable loops
// parallelised over the context's threads. One source file per op family
// implements that family's methods.

#include "absl/types/span.h"
#include "core/ops/backend.h"

namespace trident::ops::cpu {

class CpuBackendImpl : public Backend {
 public:
  absl::string_view name() const override { return "cpu"; }

  void Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
            const Tensor& c, float alpha, float beta) const override;
  void BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                   Trans trans_b, const Tensor& c, float alpha, float beta) const override;

  void LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                     const Tensor& bias, LinearEpilogue epilogue, const Tensor& y,
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
                  OutOfRangeIds policy, const Tensor& out) const override;
  void ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                      int64_t row_start, OutOfRangeIds policy, const Tensor& dtable) const override;
  void AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                            const Tensor& out) const override;
  void PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                             const Tensor& dwpe) const override;

  void RowMax(const ExecContext& ctx, const Tensor& logits, const CrossEntropyOptions& options,
              const Tensor& row_max) const override;
  void RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                 const CrossEntropyOptions& options, const Tensor& sum_exp) const override;
  void TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                   const CrossEntropyOptions& options, const Tensor& target_logit) const override;
  void CrossEntropyForward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                           const CrossEntropyOptions& options, const Tensor& losses,
                           const Tensor& logsumexp) const override;
  void CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                            const Tensor& logsumexp, float grad_scale,
                            const CrossEntropyOptions& options,
                            const Tensor& dlogits) const override;
  void CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                const Tensor& sum_exp, const Tensor& target_logit,
                                const Tensor& targets, int32_t ignore_index, const Tensor& losses,
                                const Tensor& logsumexp) const override;
  int64_t CountTargets(const ExecContext& ctx, const Tensor& targets,
                       int32_t ignore_index) const override;

  void AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                 const Tensor& exp_avg, const Tensor& exp_avg_sq, const AdamWOptions& options,
                 WeightDecay decay) const override;
};

// The process's CPU backend (a static object).
const Backend& CpuBackend();

}  // namespace trident::ops::cpu

#endif  // TRIDENT_CORE_OPS_CPU_CPU_BACKEND_H_
