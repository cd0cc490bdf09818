#include "training/flops.h"

#include <chrono>

#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/ops/gemm.h"
#include "core/tensor.h"
#include "transformer/model_config.h"

namespace trident::training {

int64_t GptParameterCount(const transformer::GptConfig& model) {
  const int64_t v = model.vocab_size();
  const int64_t t = model.context_length();
  const int64_t h = model.hidden_size();
  const int64_t f = transformer::FfnHiddenSize(model);
  const int64_t per_layer = 2 * h                // ln_1
                            + h * 3 * h + 3 * h  // attn.c_attn
                            + h * h + h          // attn.c_proj
                            + 2 * h              // ln_2
                            + h * f + f          // mlp.c_fc
                            + f * h + h;         // mlp.c_proj
  return v * h + t * h + model.num_layers() * per_layer + 2 * h;
}

double GptFlopsPerToken(const transformer::GptConfig& model, int64_t seq_length) {
  const double matmul_params = static_cast<double>(
      GptParameterCount(model) - int64_t{model.context_length()} * model.hidden_size());
  const double attention = 12.0 * model.num_layers() * static_cast<double>(model.hidden_size()) *
                           static_cast<double>(seq_length);
  return 6.0 * matmul_params + attention;
}

double ModelFlopsUtilization(double flops_per_token, double tokens_per_second,
                             double peak_flops_per_second) {
  return flops_per_token * tokens_per_second / peak_flops_per_second;
}

double MeasureCpuPeakFlops(const ExecContext& ctx, const PeakFlopsOptions& options) {
  TRIDENT_CHECK(ctx.device().is_cpu())
      << "MeasureCpuPeakFlops needs a CPU context, got " << ctx.device();
  TRIDENT_CHECK_GE(options.size, 1) << "MeasureCpuPeakFlops: size";
  const int64_t n = options.size;
  const Tensor a = Tensor::Empty({n, n}, DType::kFloat32, ctx.allocator());
  const Tensor b = Tensor::Empty({n, n}, DType::kFloat32, ctx.allocator());
  const Tensor c = Tensor::Empty({n, n}, DType::kFloat32, ctx.allocator());
  // Ordinary values: no denormals, no overflow (each product sums n * 0.25).
  ops::Fill(ctx, a, 0.5f);
  ops::Fill(ctx, b, 0.5f);
  ops::Gemm(ctx, a, ops::Trans::kNo, b, ops::Trans::kNo, c);  // warm-up: pages, caches

  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) *
                       static_cast<double>(n);
  const double min_seconds = absl::ToDoubleSeconds(options.min_time);
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  double best_seconds = 0.0;
  const Clock::time_point begin = Clock::now();
  do {
    const Clock::time_point start = Clock::now();
    ops::Gemm(ctx, a, ops::Trans::kNo, b, ops::Trans::kNo, c);
    const double seconds = seconds_since(start);
    if (seconds > 0.0 && (best_seconds == 0.0 || seconds < best_seconds)) best_seconds = seconds;
  } while (seconds_since(begin) < min_seconds || best_seconds == 0.0);
  return flops / best_seconds;
}

}  // namespace trident::training
