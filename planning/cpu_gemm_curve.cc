// Measures this CPU's GEMM efficiency curve for the planner's hardware file
// (planning/hardware.proto: t(F) = gemm_overhead_s + F / (gemm_peak_efficiency
// x rate)). Times ops::Gemm on one thread over the shapes a GPT layer issues
// (tokens x hidden x {hidden, 3 hidden, 4 hidden}, forward and the two
// transposed backward forms) for small models, each call on operands of its
// own (cycled copies larger than the caches), keeps each shape's median call,
// and fits the two parameters by least squares of t on F: the
// intercept is the overhead, 1 / (slope x rate) the peak efficiency (weighted
// by 1 / t^2: the relative misfit is minimised, small and large GEMMs alike).
//
//   bazel run -c opt //planning:cpu_gemm_curve -- --rate=1.47533e11
//
// --rate is the hardware file's matrix rate (fp32_flops), so the fitted
// efficiency is relative to the figure the file states.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/exec_context.h"
#include "core/ops/gemm.h"
#include "core/random.h"
#include "core/tensor.h"

ABSL_FLAG(double, rate, 1.47533e11, "the hardware file's fp32 matrix rate, FLOP/s");
ABSL_FLAG(int, repeats, 5, "passes over each shape's operand copies (the median call is kept)");

namespace trident {
namespace {

struct Shape {
  int64_t m, k, n;
  ops::Trans ta, tb;
};

// The median time of one call of `s`, each call on operands of its own
// (copies cycled through, together larger than the caches, as a training
// step's GEMMs meet their operands: not hot from the previous call).
double MedianSeconds(const ExecContext& ctx, const Shape& s, int repeats) {
  const bool ta = s.ta == ops::Trans::kYes, tb = s.tb == ops::Trans::kYes;
  const double set_bytes = 4.0 * (s.m * s.k + s.k * s.n + s.m * s.n);
  const int copies = static_cast<int>(std::clamp(64e6 / set_bytes, 1.0, 64.0));
  struct Operands {
    Tensor a, b, c;
  };
  std::vector<Operands> sets;
  for (int i = 0; i < copies; ++i) {
    Operands o{Tensor::Empty(ta ? std::vector<int64_t>{s.k, s.m} : std::vector<int64_t>{s.m, s.k},
                             DType::kFloat32),
               Tensor::Empty(tb ? std::vector<int64_t>{s.n, s.k} : std::vector<int64_t>{s.k, s.n},
                             DType::kFloat32),
               Tensor::Empty({s.m, s.n}, DType::kFloat32)};
    FillUniform(ctx, o.a, 2 * i + 1, "gemm_curve_a", -0.1f, 0.1f);
    FillUniform(ctx, o.b, 2 * i + 2, "gemm_curve_b", -0.1f, 0.1f);
    sets.push_back(std::move(o));
  }
  ops::Gemm(ctx, sets[0].a, s.ta, sets[0].b, s.tb, sets[0].c);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    for (const Operands& o : sets) {
      const auto start = std::chrono::steady_clock::now();
      ops::Gemm(ctx, o.a, s.ta, o.b, s.tb, o.c);
      times.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

int Main() {
  const double rate = absl::GetFlag(FLAGS_rate);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  const ExecContext ctx = ExecContext::Cpu(1);
  std::vector<Shape> shapes;
  for (int64_t tokens : {16, 64, 128, 256, 512, 1024}) {
    for (int64_t h : {32, 64, 128, 256}) {
      for (int64_t out : {h, 3 * h, 4 * h}) {
        shapes.push_back({tokens, h, out, ops::Trans::kNo, ops::Trans::kNo});   // y = x W
        shapes.push_back({tokens, out, h, ops::Trans::kNo, ops::Trans::kYes});  // dx = dy W^T
        shapes.push_back({h, tokens, out, ops::Trans::kYes, ops::Trans::kNo});  // dW = x^T dy
      }
    }
  }
  std::vector<double> flops, seconds;
  std::printf("m,k,n,trans_a,trans_b,flops,median_s,efficiency\n");
  for (const Shape& s : shapes) {
    const double f = 2.0 * s.m * s.k * s.n;
    const double t = MedianSeconds(ctx, s, repeats);
    flops.push_back(f);
    seconds.push_back(t);
    std::printf("%lld,%lld,%lld,%d,%d,%.6g,%.6g,%.4f\n", static_cast<long long>(s.m),
                static_cast<long long>(s.k), static_cast<long long>(s.n),
                s.ta == ops::Trans::kYes, s.tb == ops::Trans::kYes, f, t, f / (rate * t));
  }
  // Least squares of the relative misfit (a + b F - t) / t, so tiny GEMMs
  // weigh as much as large ones: weights 1 / t^2.
  double sw = 0, sf = 0, st = 0, sff = 0, sft = 0;
  for (size_t i = 0; i < flops.size(); ++i) {
    const double w = 1.0 / (seconds[i] * seconds[i]);
    sw += w;
    sf += w * flops[i];
    st += w * seconds[i];
    sff += w * flops[i] * flops[i];
    sft += w * flops[i] * seconds[i];
  }
  const double slope = (sw * sft - sf * st) / (sw * sff - sf * sf);
  const double intercept = (st - slope * sf) / sw;
  double worst = 0;
  for (size_t i = 0; i < flops.size(); ++i) {
    const double fitted = intercept + slope * flops[i];
    worst = std::max(worst, std::abs(fitted - seconds[i]) / seconds[i]);
  }
  std::printf("# fit over %zu shapes: gemm_overhead_s: %.3g  gemm_peak_efficiency: %.3f "
              "(of %.6g FLOP/s); worst relative misfit %.0f%%\n",
              flops.size(), intercept, 1.0 / (slope * rate), rate, 100 * worst);
  return 0;
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return trident::Main();
}
