// Throughput of the CPU kernels, for tuning (not a test):
//   bazel run //core/ops:ops_bench -- [threads]
// Prints milliseconds per call and the rate (GFLOP/s for GEMM-bound ops, GB/s
// of compulsory traffic for memory-bound ones).

#include <cblas.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "core/exec_context.h"
#include "core/ops/ops.h"
#include "core/random.h"
#include "core/tensor.h"

namespace trident::ops {
namespace {

double TimeMs(const std::function<void()>& fn) {
  fn();  // Warm-up.
  int reps = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < 300.0 || reps < 3) {
    fn();
    ++reps;
    elapsed =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return elapsed / reps;
}

Tensor Random(const ExecContext& ctx, absl::Span<const int64_t> shape, const char* name) {
  Tensor t = Tensor::Empty(shape, DType::kFloat32);
  FillNormal(ctx, t, 1, name, 1.0f);
  return t;
}

void Run(int threads) {
  ExecContext ctx = ExecContext::Cpu(threads);
  std::printf("threads=%d\n", threads);
  // A GPT-2-small-like MLP GEMM on 1024 tokens.
  const int64_t n = 1024, c = 768;
  {
    Tensor x = Random(ctx, {n, c}, "x"), w = Random(ctx, {c, 4 * c}, "w");
    Tensor y = Tensor::Empty({n, 4 * c}, DType::kFloat32);
    const double ms = TimeMs([&] { Gemm(ctx, x, Trans::kNo, w, Trans::kNo, y); });
    std::printf("  gemm %ldx%ldx%ld          %8.2f ms  %6.1f GFLOP/s\n", n, 4 * c, c, ms,
                2.0 * n * c * 4 * c / ms / 1e6);
    Tensor dw = Tensor::Zeros({c, 4 * c}, DType::kFloat32);
    const double ms_t = TimeMs([&] { Gemm(ctx, x, Trans::kYes, y, Trans::kNo, dw, 1, 1); });
    std::printf("  gemm weight-grad (T,N)      %8.2f ms  %6.1f GFLOP/s\n", ms_t,
                2.0 * n * c * 4 * c / ms_t / 1e6);
    // Mixed precision: the same GEMMs with bf16 operands, which the CPU
    // backend converts to fp32, multiplies with sgemm and rounds back
    // (core/ops/cpu/float16_storage.h); the ratio is against the fp32 time
    // above, same run. OpenBLAS's sbgemm (bf16 in, fp32 out) would skip the
    // conversions, but only libraries built with BUILD_BFLOAT16 export it.
    Tensor x16 = Tensor::Empty({n, c}, DType::kBFloat16), w16 = Tensor::Empty({c, 4 * c}, DType::kBFloat16);
    Tensor y16 = Tensor::Empty({n, 4 * c}, DType::kBFloat16);
    Copy(ctx, x, x16);
    Copy(ctx, w, w16);
    const double ms16 = TimeMs([&] { Gemm(ctx, x16, Trans::kNo, w16, Trans::kNo, y16); });
    std::printf("  gemm bf16 (convert+sgemm)   %8.2f ms  %6.1f GFLOP/s  %.2fx the fp32 time\n",
                ms16, 2.0 * n * c * 4 * c / ms16 / 1e6, ms16 / ms);
    Copy(ctx, y, y16);
    const double ms16_t = TimeMs([&] { Gemm(ctx, x16, Trans::kYes, y16, Trans::kNo, dw, 1, 1); });
    std::printf("  gemm bf16 weight-grad->fp32 %8.2f ms  %6.1f GFLOP/s  %.2fx the fp32 time\n",
                ms16_t, 2.0 * n * c * 4 * c / ms16_t / 1e6, ms16_t / ms_t);
    std::printf("  cblas_sbgemm: %s\n",
                dlsym(RTLD_DEFAULT, "cblas_sbgemm") != nullptr
                    ? "exported by this OpenBLAS (not used yet: measure it against the above)"
                    : "not exported by this OpenBLAS (built without BUILD_BFLOAT16)");
    if (threads > 1) {
      // The same product with OpenBLAS's own threading, for comparison.
      openblas_set_num_threads(threads);
      const double ms_ob = TimeMs([&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, 4 * c, c, 1.0f, x.data<float>(),
                    c, w.data<float>(), 4 * c, 0.0f, y.data<float>(), 4 * c);
      });
      openblas_set_num_threads(1);
      std::printf("  (openblas-threaded gemm     %8.2f ms  %6.1f GFLOP/s)\n", ms_ob,
                  2.0 * n * c * 4 * c / ms_ob / 1e6);
    }
  }
  {
    const int64_t b = 4, t = 256, h = 12, d = 64, cc = h * d;
    Tensor qkv = Random(ctx, {b, t, 3 * cc}, "qkv");
    Tensor out = Tensor::Empty({b, t, cc}, DType::kFloat32);
    Tensor lse = Tensor::Empty({b, h, t}, DType::kFloat32);
    Tensor dqkv = Tensor::Empty({b, t, 3 * cc}, DType::kFloat32);
    const double fwd = TimeMs([&] { AttentionForward(ctx, qkv, h, out, lse); });
    const double bwd = TimeMs([&] { AttentionBackward(ctx, qkv, out, lse, out, h, dqkv); });
    // Causal GEMM work done: ~half of the dense T x T products (the backward
    // also recomputes the scores, a fifth GEMM, not counted here).
    const double dense_flops = 2.0 * b * h * t * t * d;
    std::printf("  attention fwd B%ld T%ld H%ld D%ld %8.2f ms  (dense-equivalent %.1f GFLOP/s)\n",
                b, t, h, d, fwd, 2 * dense_flops / fwd / 1e6);
    std::printf("  attention bwd               %8.2f ms  (dense-equivalent %.1f GFLOP/s)\n", bwd,
                4 * dense_flops / bwd / 1e6);
  }
  {
    Tensor x = Random(ctx, {n, c}, "ln"), g = Random(ctx, {c}, "g"), bb = Random(ctx, {c}, "b");
    Tensor y = Tensor::Empty({n, c}, DType::kFloat32), dx = Tensor::Empty({n, c}, DType::kFloat32);
    Tensor mean = Tensor::Empty({n}, DType::kFloat32), rstd = Tensor::Empty({n}, DType::kFloat32);
    Tensor dg = Tensor::Zeros({c}, DType::kFloat32), db = Tensor::Zeros({c}, DType::kFloat32);
    const double bytes = 4.0 * n * c;
    const double f = TimeMs([&] { LayerNormForward(ctx, x, g, bb, 1e-5f, y, mean, rstd); });
    const double bi = TimeMs([&] { LayerNormBackwardInput(ctx, x, g, mean, rstd, y, dx); });
    const double bw = TimeMs([&] { LayerNormBackwardWeights(ctx, x, mean, rstd, y, dg, db); });
    std::printf("  layernorm fwd/bwd-in/bwd-w  %8.3f / %.3f / %.3f ms  (%.1f / %.1f / %.1f GB/s)\n",
                f, bi, bw, 2 * bytes / f / 1e6, 3 * bytes / bi / 1e6, 2 * bytes / bw / 1e6);
  }
  {
    Tensor x = Random(ctx, {n, 4 * c}, "gelu"), y = Tensor::Empty({n, 4 * c}, DType::kFloat32);
    const double bytes = 4.0 * n * 4 * c;
    const double f = TimeMs([&] { GeluForward(ctx, x, y); });
    const double b = TimeMs([&] { GeluBackward(ctx, x, y, y); });
    std::printf("  gelu fwd/bwd [%ld, %ld]     %8.3f / %.3f ms  (%.1f / %.1f GB/s)\n", n, 4 * c, f,
                b, 2 * bytes / f / 1e6, 3 * bytes / b / 1e6);
    const double a = TimeMs([&] { Add(ctx, x, y, y); });
    std::printf("  add                         %8.3f ms  (%.1f GB/s)\n", a, 3 * bytes / a / 1e6);
  }
  {
    const int64_t vocab = 50304, rows = 256;
    Tensor logits = Random(ctx, {rows, vocab}, "logits");
    std::vector<int32_t> tv(rows);
    for (int64_t i = 0; i < rows; ++i) tv[i] = static_cast<int32_t>((i * 7919) % vocab);
    Tensor targets = Tensor::FromVector(tv, {rows});
    Tensor losses = Tensor::Empty({rows}, DType::kFloat32),
           lse = Tensor::Empty({rows}, DType::kFloat32);
    Tensor dlogits = Tensor::Empty({rows, vocab}, DType::kFloat32);
    const double bytes = 4.0 * rows * vocab;
    const double f = TimeMs([&] { CrossEntropyForward(ctx, logits, targets, {}, losses, lse); });
    const double b =
        TimeMs([&] { CrossEntropyBackward(ctx, logits, targets, lse, 1.0f / rows, {}, dlogits); });
    std::printf("  cross-entropy [%ld, %ld]  %8.3f / %.3f ms  (%.1f / %.1f GB/s)\n", rows, vocab, f,
                b, bytes / f / 1e6, 2 * bytes / b / 1e6);
  }
  {
    const int64_t params = 10'000'000;
    Tensor p = Random(ctx, {params}, "p"), g = Random(ctx, {params}, "g");
    Tensor m = Tensor::Zeros({params}, DType::kFloat32),
           v = Tensor::Zeros({params}, DType::kFloat32);
    AdamWOptions o;
    const double a = TimeMs([&] { AdamWStep(ctx, p, g, m, v, o, WeightDecay::kApply); });
    const double s = TimeMs([&] { SumOfSquares(ctx, g); });
    std::printf("  adamw / sumsq 10M params    %8.2f / %.2f ms  (%.1f / %.1f GB/s)\n", a, s,
                28.0 * params / a / 1e6, 4.0 * params / s / 1e6);
  }
}

}  // namespace
}  // namespace trident::ops

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  trident::ops::Run(threads);
  return 0;
}
