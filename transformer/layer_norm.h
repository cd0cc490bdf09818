#ifndef TRIDENT_TRANSFORMER_LAYER_NORM_H_
#define TRIDENT_TRANSFORMER_LAYER_NORM_H_

// A LayerNorm module: replicated weight ("<name>.weight", init 1) and bias
// ("<name>.bias", init 0), no weight decay. Every tensor-parallel rank holds
// the same values and computes the same gradients from the same inputs.

#include <string>

#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"

namespace trident::transformer {

// What the forward keeps for the backward: per-row mean and 1/stddev.
struct LayerNormStats {
  Tensor mean;
  Tensor rstd;
};

class LayerNorm {
 public:
  LayerNorm(const std::string& name, int64_t features, float epsilon, Device device);

  void Initialize(const ExecContext& ctx);

  // y = LayerNorm(x) over the last dim; stats are allocated from ctx.
  LayerNormStats Forward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const;
  // sum = a + b (may be a or b), y = LayerNorm(sum): the residual add and this
  // LayerNorm in one op (ops::AddLayerNormForward); the stats are of sum.
  LayerNormStats AddForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                            const Tensor& sum, const Tensor& y) const;
  // dx from dy (overwritten).
  void BackwardInput(const ExecContext& ctx, const Tensor& x, const LayerNormStats& stats,
                     const Tensor& dy, const Tensor& dx) const;
  // dx = (dx from dy) + d_residual: AddForward's input gradient, with the
  // gradient reaching sum by the residual path (ops::AddLayerNormBackwardInput).
  void AddBackwardInput(const ExecContext& ctx, const Tensor& sum, const LayerNormStats& stats,
                        const Tensor& dy, const Tensor& d_residual, const Tensor& dx) const;
  // weight.grad and bias.grad += their gradients.
  void BackwardWeights(const ExecContext& ctx, const Tensor& x, const LayerNormStats& stats,
                       const Tensor& dy);

  Parameter& weight() { return weight_; }
  Parameter& bias() { return bias_; }

 private:
  float epsilon_;
  Parameter weight_;
  Parameter bias_;
};

}  // namespace trident::transformer

#endif  // TRIDENT_TRANSFORMER_LAYER_NORM_H_
