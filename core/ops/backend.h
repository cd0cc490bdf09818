#ifndef TRIDENT_CORE_OPS_BACKEND_H_
#define TRIDENT_CORE_OPS_BACKEND_H_

// The kernel interface a device implements. The public op functions
// (core/ops/*.h) check shapes, dtypes-that-every-device-shares and devices, then
// call the backend of the context's device: BackendFor(ctx) (core/ops/dispatch.h).
// The CPU backend (core/ops/cpu) is always linked; a CUDA backend implements this
// same interface in its own cuda_library (alwayslink) and registers itself at
// start-up with RegisterBackend(DeviceType::kCuda, ...), so model code never
// changes and CPU-only builds need no #ifdefs.
//
// Every method receives arguments the public op has already validated (same
// device as the context, consistent shapes, contiguity as documented); a backend
// still checks what only it knows, e.g. the CPU kernels refuse 16-bit floats
// (the CPU backend registered by the dispatch wraps them in
// cpu::Float16StorageBackend, which converts 16-bit operands to fp32).
// Semantics of each method are those of the public op of the same name.

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/device.h"
#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual absl::string_view name() const = 0;

  // gemm.h
  virtual void Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                    Trans trans_b, const Tensor& c, float alpha, float beta) const = 0;
  virtual void BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                           Trans trans_b, const Tensor& c, float alpha, float beta) const = 0;

  // linear.h
  virtual void LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, LinearEpilogue epilogue, const Tensor& y,
                             const Tensor& pre) const = 0;
  virtual void LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                                const Tensor& dweight, const Tensor& dbias) const = 0;

  // elementwise.h
  virtual void Fill(const ExecContext& ctx, const Tensor& x, float value) const = 0;
  virtual void Copy(const ExecContext& ctx, const Tensor& src, const Tensor& dst) const = 0;
  virtual void Add(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                   const Tensor& out) const = 0;
  virtual void Axpy(const ExecContext& ctx, float alpha, const Tensor& x,
                    const Tensor& y) const = 0;
  virtual void Scale(const ExecContext& ctx, const Tensor& x, float alpha) const = 0;
  virtual void BroadcastRows(const ExecContext& ctx, const Tensor& row,
                             const Tensor& out) const = 0;
  virtual void BiasAdd(const ExecContext& ctx, const Tensor& bias, const Tensor& x) const = 0;
  virtual void BiasGrad(const ExecContext& ctx, const Tensor& dy, const Tensor& dbias) const = 0;

  // reduction.h
  virtual double Sum(const ExecContext& ctx, const Tensor& x) const = 0;
  virtual double SumOfSquares(const ExecContext& ctx, const Tensor& x) const = 0;
  virtual double MultiTensorSum(const ExecContext& ctx,
                                absl::Span<const Tensor> tensors) const = 0;
  virtual double MultiTensorSumOfSquares(const ExecContext& ctx,
                                         absl::Span<const Tensor> tensors) const = 0;

  // layer_norm.h
  virtual void LayerNormForward(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                const Tensor& beta, float epsilon, const Tensor& y,
                                const Tensor& mean, const Tensor& rstd) const = 0;
  virtual void LayerNormBackwardInput(const ExecContext& ctx, const Tensor& x, const Tensor& gamma,
                                      const Tensor& mean, const Tensor& rstd, const Tensor& dy,
                                      const Tensor& dx) const = 0;
  virtual void AddLayerNormForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                   const Tensor& gamma, const Tensor& beta, float epsilon,
                                   const Tensor& sum, const Tensor& y, const Tensor& mean,
                                   const Tensor& rstd) const = 0;
  virtual void AddLayerNormBackwardInput(const ExecContext& ctx, const Tensor& x,
                                         const Tensor& gamma, const Tensor& mean,
                                         const Tensor& rstd, const Tensor& dy,
                                         const Tensor& d_residual, const Tensor& dx) const = 0;
  virtual void LayerNormBackwardWeights(const ExecContext& ctx, const Tensor& x, const Tensor& mean,
                                        const Tensor& rstd, const Tensor& dy, const Tensor& dgamma,
                                        const Tensor& dbeta) const = 0;

  // gelu.h
  virtual void GeluForward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const = 0;
  virtual void GeluBackward(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                            const Tensor& dx) const = 0;

  // attention.h
  virtual void AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads,
                                const Tensor& out, const Tensor& lse) const = 0;
  virtual void AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                                 const Tensor& lse, const Tensor& dout, int num_heads,
                                 const Tensor& dqkv) const = 0;

  // embedding.h
  virtual void GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table,
                          int64_t row_start, OutOfRangeIds policy, const Tensor& out) const = 0;
  virtual void ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                              int64_t row_start, OutOfRangeIds policy,
                              const Tensor& dtable) const = 0;
  virtual void AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe,
                                    const Tensor& out) const = 0;
  virtual void PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout,
                                     const Tensor& dwpe) const = 0;

  // cross_entropy.h
  virtual void RowMax(const ExecContext& ctx, const Tensor& logits,
                      const CrossEntropyOptions& options, const Tensor& row_max) const = 0;
  virtual void RowSumExp(const ExecContext& ctx, const Tensor& logits, const Tensor& row_max,
                         const CrossEntropyOptions& options, const Tensor& sum_exp) const = 0;
  virtual void TargetLogit(const ExecContext& ctx, const Tensor& logits, const Tensor& targets,
                           const CrossEntropyOptions& options,
                           const Tensor& target_logit) const = 0;
  virtual void CrossEntropyForward(const ExecContext& ctx, const Tensor& logits,
                                   const Tensor& targets, const CrossEntropyOptions& options,
                                   const Tensor& losses, const Tensor& logsumexp) const = 0;
  virtual void CrossEntropyBackward(const ExecContext& ctx, const Tensor& logits,
                                    const Tensor& targets, const Tensor& logsumexp,
                                    float grad_scale, const CrossEntropyOptions& options,
                                    const Tensor& dlogits) const = 0;
  virtual void CombineCrossEntropyParts(const ExecContext& ctx, const Tensor& row_max,
                                        const Tensor& sum_exp, const Tensor& target_logit,
                                        const Tensor& targets, int32_t ignore_index,
                                        const Tensor& losses, const Tensor& logsumexp) const = 0;
  virtual int64_t CountTargets(const ExecContext& ctx, const Tensor& targets,
                               int32_t ignore_index) const = 0;

  // optimizer.h
  virtual void AdamWStep(const ExecContext& ctx, const Tensor& param, const Tensor& grad,
                         const Tensor& exp_avg, const Tensor& exp_avg_sq,
                         const AdamWOptions& options, WeightDecay decay) const = 0;
};

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_BACKEND_H_
