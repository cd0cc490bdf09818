// The CPU attention kernels (core/ops/cpu/attention.cc: memory-efficient, the
// probabilities recomputed tile by tile) against the reference kernel that
// keeps the T x T probabilities (core/ops/cpu/attention_reference.cc, what
// the tests compare with) on the shapes of bench/cpu_vs_torch's three
// models, batch 8, with 1 and 2 threads. Not a test:
//   bazel run -c opt //core/ops:attention_bench -- [repetitions, default 9]
// Each repetition times the reference forward, ours, the reference backward
// and ours once each, interleaved, so a noisy neighbour slows both sides
// alike. Prints the median milliseconds per call and reference/ours, with the
// range of the per-repetition ratios (the machine may be shared).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/exec_context.h"
#include "core/ops/attention.h"
#include "core/ops/cpu/attention_reference.h"
#include "core/random.h"
#include "core/tensor.h"

namespace trident::ops {
namespace {

struct Shape {
  const char* name;
  int64_t batch, seq, channels, heads;
};

// bench/cpu_vs_torch's SIZES: the default model, 8L-h512-T256, 12L-h768-T128.
constexpr Shape kShapes[] = {
    {"T128 C128 H4", 8, 128, 128, 4},
    {"T256 C512 H8", 8, 256, 512, 8},
    {"T128 C768 H12", 8, 128, 768, 12},
};

double Ms(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Tensor Random(const ExecContext& ctx, std::initializer_list<int64_t> shape, uint64_t seed) {
  Tensor t = Tensor::Empty(shape, DType::kFloat32);
  FillNormal(ctx, t, seed, "attention_bench", 1.0f);
  return t;
}

struct Series {
  std::vector<double> old_ms, new_ms;
  void Print(const char* what) const {
    std::vector<double> ratios;
    for (size_t i = 0; i < old_ms.size(); ++i) ratios.push_back(old_ms[i] / new_ms[i]);
    const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
    std::printf("  %-8s reference %8.2f ms  ours %8.2f ms  reference/ours %.2fx (per-rep "
                "%.2f-%.2fx)\n",
                what,
                Median(old_ms), Median(new_ms), Median(old_ms) / Median(new_ms), *lo, *hi);
  }
};

void Run(int reps) {
  for (const Shape& s : kShapes) {
    for (int threads : {1, 2}) {
      const ExecContext ctx = ExecContext::Cpu(threads);
      const int64_t c = s.channels;
      Tensor qkv = Random(ctx, {s.batch, s.seq, 3 * c}, 1);
      Tensor dout = Random(ctx, {s.batch, s.seq, c}, 2);
      Tensor out = Tensor::Empty({s.batch, s.seq, c}, DType::kFloat32);
      Tensor lse = Tensor::Empty({s.batch, s.heads, s.seq}, DType::kFloat32);
      Tensor dqkv = Tensor::Empty({s.batch, s.seq, 3 * c}, DType::kFloat32);
      const int h = static_cast<int>(s.heads);
      Tensor probs = Tensor::Empty({s.batch, s.heads, s.seq, s.seq}, DType::kFloat32);
      auto old_fwd = [&] { cpu::ReferenceAttentionForward(ctx, qkv, h, out, probs); };
      auto new_fwd = [&] { AttentionForward(ctx, qkv, h, out, lse); };
      auto old_bwd = [&] { cpu::ReferenceAttentionBackward(ctx, qkv, probs, dout, h, dqkv); };
      auto new_bwd = [&] { AttentionBackward(ctx, qkv, out, lse, dout, h, dqkv); };
      // Warm-up: scratch buffers, pages, caches.
      old_fwd(), new_fwd(), old_bwd(), new_bwd();
      Series fwd, bwd;
      for (int r = 0; r < reps; ++r) {
        fwd.old_ms.push_back(Ms(old_fwd));
        fwd.new_ms.push_back(Ms(new_fwd));
        bwd.old_ms.push_back(Ms(old_bwd));
        bwd.new_ms.push_back(Ms(new_bwd));
      }
      // One forward + backward is 2 + 5 products of T x T/2 x D (causal) per head.
      const double causal_gflop =
          2.0 * s.batch * s.heads * (s.seq * (s.seq + 1) / 2.0) * (c / s.heads) * 1e-9;
      std::printf("%s B%lld, %d thread(s), %d reps (causal work: fwd %.3f GFLOP, bwd %.3f):\n",
                  s.name, static_cast<long long>(s.batch), threads, reps, 2 * causal_gflop,
                  5 * causal_gflop);
      fwd.Print("forward");
      bwd.Print("backward");
    }
  }
}

}  // namespace
}  // namespace trident::ops

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 9;
  if (reps < 1) {
    std::fprintf(stderr, "attention_bench: repetitions = %d must be >= 1\n", reps);
    return 1;
  }
  trident::ops::Run(reps);
  return 0;
}
