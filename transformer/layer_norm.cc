#include "transformer/layer_norm.h"

#include "core/ops/elementwise.h"
#include "core/ops/layer_norm.h"
#include "tensor_parallel/linear.h"

namespace trident::transformer {

LayerNorm::LayerNorm(const std::string& name, int64_t features, float epsilon, Device device)
    : epsilon_(epsilon) {
  ShardLayout layout;
  layout.global_shape = {features};
  weight_ = tp::MakeParameter(name + ".weight", {features}, /*weight_decay=*/false, layout,
                              device);
  bias_ = tp::MakeParameter(name + ".bias", {features}, /*weight_decay=*/false, layout, device);
}

void LayerNorm::Initialize(const ExecContext& ctx) {
  ops::Fill(ctx, weight_.value, 1.0f);
  ops::Fill(ctx, bias_.value, 0.0f);
}

LayerNormStats LayerNorm::Forward(const ExecContext& ctx, const Tensor& x, const Tensor& y) const {
  const int64_t rows = x.numel() / x.dim(-1);
  LayerNormStats stats{Tensor::Empty({rows}, DType::kFloat32, ctx.allocator()),
                       Tensor::Empty({rows}, DType::kFloat32, ctx.allocator())};
  ops::LayerNormForward(ctx, x, weight_.value, bias_.value, epsilon_, y, stats.mean, stats.rstd);
  return stats;
}

LayerNormStats LayerNorm::AddForward(const ExecContext& ctx, const Tensor& a, const Tensor& b,
                                     const Tensor& sum, const Tensor& y) const {
  const int64_t rows = a.numel() / a.dim(-1);
  LayerNormStats stats{Tensor::Empty({rows}, DType::kFloat32, ctx.allocator()),
                       Tensor::Empty({rows}, DType::kFloat32, ctx.allocator())};
  ops::AddLayerNormForward(ctx, a, b, weight_.value, bias_.value, epsilon_, sum, y, stats.mean,
                           stats.rstd);
  return stats;
}

void LayerNorm::AddBackwardInput(const ExecContext& ctx, const Tensor& sum,
                                 const LayerNormStats& stats, const Tensor& dy,
                                 const Tensor& d_residual, const Tensor& dx) const {
  ops::AddLayerNormBackwardInput(ctx, sum, weight_.value, stats.mean, stats.rstd, dy, d_residual,
                                 dx);
}

void LayerNorm::BackwardInput(const ExecContext& ctx, const Tensor& x,
                              const LayerNormStats& stats, const Tensor& dy,
                              const Tensor& dx) const {
  ops::LayerNormBackwardInput(ctx, x, weight_.value, stats.mean, stats.rstd, dy, dx);
}

void LayerNorm::BackwardWeights(const ExecContext& ctx, const Tensor& x,
                                const LayerNormStats& stats, const Tensor& dy) {
  ops::LayerNormBackwardWeights(ctx, x, stats.mean, stats.rstd, dy, weight_.grad, bias_.grad);
}

}  // namespace trident::transformer
