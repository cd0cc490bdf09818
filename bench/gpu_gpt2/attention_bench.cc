// Causal attention forward and backward on one GPU: cuDNN's fused attention
// against the fallback flash kernel, measured in the same run, with the ratio.
//
//   attention_bench [--batch=8] [--seq=1024] [--heads=12] [--head_dim=64]
//                   [--dtype=bf16] [--iters=20]
//
// Each (path, direction) is timed with CUDA events over --iters calls after 3
// warm-up calls (the first builds cuDNN's plan). FLOPs counted are the matmul
// work a causal kernel cannot skip: forward 2 products of B H T^2 D / 2
// multiply-adds each = 2 B H T^2 D FLOPs; backward 5 products = 2.5x that.

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/cuda/attention/attention.h"
#include "core/cuda/cuda_allocator.h"
#include "core/dtype.h"
#include "core/tensor.h"

ABSL_FLAG(int64_t, batch, 8, "sequences");
ABSL_FLAG(int64_t, seq, 1024, "tokens per sequence (T)");
ABSL_FLAG(int, heads, 12, "attention heads");
ABSL_FLAG(int64_t, head_dim, 64, "dims per head (D)");
ABSL_FLAG(std::string, dtype, "bf16", "storage dtype: bf16 or fp16 (cuDNN), fp32 (fallback only)");
ABSL_FLAG(int, iters, 20, "timed calls per measurement");

namespace trident::cuda {
namespace {

// Mean milliseconds per call of `call`, timed with CUDA events after 3 warm-up
// calls; an error from any call is returned.
absl::StatusOr<double> TimeCalls(int iters, const std::function<absl::Status()>& call) {
  for (int i = 0; i < 3; ++i) {
    if (absl::Status s = call(); !s.ok()) return s;
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, nullptr);
  for (int i = 0; i < iters; ++i) {
    if (absl::Status s = call(); !s.ok()) return s;
  }
  cudaEventRecord(stop, nullptr);
  if (cudaEventSynchronize(stop) != cudaSuccess) {
    return absl::InternalError(absl::StrCat("timing: ", cudaGetErrorString(cudaGetLastError())));
  }
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return static_cast<double>(ms) / iters;
}

// `values` converted to `dtype` (round to nearest even) in a new device tensor.
Tensor UploadAs(const std::vector<float>& values, absl::Span<const int64_t> shape, DType dtype,
                const std::shared_ptr<Allocator>& allocator) {
  const Tensor t = Tensor::Empty(shape, dtype, allocator);
  if (dtype == DType::kBFloat16) {
    std::vector<BFloat16> converted;
    for (float v : values) converted.push_back(ToBFloat16(v));
    t.CopyFrom(converted);
  } else if (dtype == DType::kFloat16) {
    std::vector<Float16> converted;
    for (float v : values) converted.push_back(ToFloat16(v));
    t.CopyFrom(converted);
  } else {
    t.CopyFrom(values);
  }
  return t;
}

struct PathTimes {
  std::string forward_path, backward_path;
  double forward_ms = 0.0, backward_ms = 0.0;
};

absl::StatusOr<PathTimes> Measure(const std::shared_ptr<Allocator>& allocator, bool force_fallback,
                                  const Tensor& qkv, const Tensor& out, const Tensor& lse,
                                  const Tensor& dout, const Tensor& dqkv, int heads, int iters) {
  absl::StatusOr<std::unique_ptr<CudaAttention>> attention =
      CudaAttention::Create(allocator, {.force_fallback = force_fallback});
  if (!attention.ok()) return attention.status();
  CudaAttention& a = **attention;
  PathTimes times;
  absl::StatusOr<double> forward =
      TimeCalls(iters, [&] { return a.AttentionForward(nullptr, qkv, heads, out, lse); });
  if (!forward.ok()) return forward.status();
  times.forward_ms = *forward;
  times.forward_path = std::string(AttentionPathName(a.last_path()));
  absl::StatusOr<double> backward = TimeCalls(
      iters, [&] { return a.AttentionBackward(nullptr, qkv, out, lse, dout, heads, dqkv); });
  if (!backward.ok()) return backward.status();
  times.backward_ms = *backward;
  times.backward_path = std::string(AttentionPathName(a.last_path()));
  return times;
}

int Run() {
  const int64_t b = absl::GetFlag(FLAGS_batch), t = absl::GetFlag(FLAGS_seq);
  const int heads = absl::GetFlag(FLAGS_heads);
  const int64_t d = absl::GetFlag(FLAGS_head_dim);
  const int iters = absl::GetFlag(FLAGS_iters);
  const absl::StatusOr<DType> parsed = ParseDType(absl::GetFlag(FLAGS_dtype));
  if (!parsed.ok() || !IsFloatingPoint(*parsed)) {
    std::fprintf(stderr, "--dtype=%s: must be bf16, fp16 or fp32\n",
                 absl::GetFlag(FLAGS_dtype).c_str());
    return 2;
  }
  const DType dtype = *parsed;
  if (b <= 0 || t <= 0 || heads <= 0 || d <= 0 || iters <= 0) {
    std::fprintf(stderr, "--batch, --seq, --heads, --head_dim and --iters must be > 0\n");
    return 2;
  }
  absl::StatusOr<std::shared_ptr<CudaCachingAllocator>> allocator =
      CudaCachingAllocator::Create(0, "attention_bench");
  if (!allocator.ok()) {
    std::fprintf(stderr, "no GPU: %s\n", std::string(allocator.status().message()).c_str());
    return 1;
  }
  const int64_t c = heads * d;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  std::vector<float> qkv_values(b * t * 3 * c), dout_values(b * t * c);
  for (float& v : qkv_values) v = uniform(rng);
  for (float& v : dout_values) v = uniform(rng) / 2;
  const Tensor qkv = UploadAs(qkv_values, {b, t, 3 * c}, dtype, *allocator);
  const Tensor dout = UploadAs(dout_values, {b, t, c}, dtype, *allocator);
  const Tensor out = Tensor::Empty({b, t, c}, dtype, *allocator);
  const Tensor lse = Tensor::Empty({b, heads, t}, DType::kFloat32, *allocator);
  const Tensor dqkv = Tensor::Empty({b, t, 3 * c}, dtype, *allocator);

  const double forward_flops = 2.0 * b * heads * t * t * d;
  const double backward_flops = 2.5 * forward_flops;
  std::printf("attention B=%ld T=%ld H=%d D=%ld %s, %d timed calls each\n", b, t, heads, d,
              std::string(DTypeName(dtype)).c_str(), iters);
  PathTimes times[2];
  for (int forced = 0; forced < 2; ++forced) {
    absl::StatusOr<PathTimes> measured =
        Measure(*allocator, forced == 1, qkv, out, lse, dout, dqkv, heads, iters);
    if (!measured.ok()) {
      std::fprintf(stderr, "%s: %s\n", forced ? "fallback" : "auto",
                   std::string(measured.status().message()).c_str());
      return 1;
    }
    times[forced] = *measured;
    const PathTimes& m = *measured;
    std::printf("  %-8s forward  %8.3f ms %7.1f TFLOP/s (ran: %s)\n", forced ? "fallback" : "auto",
                m.forward_ms, forward_flops / (m.forward_ms * 1e9), m.forward_path.c_str());
    std::printf("  %-8s backward %8.3f ms %7.1f TFLOP/s (ran: %s)\n", forced ? "fallback" : "auto",
                m.backward_ms, backward_flops / (m.backward_ms * 1e9), m.backward_path.c_str());
  }
  std::printf("  fallback / auto time: forward %.2fx, backward %.2fx\n",
              times[1].forward_ms / times[0].forward_ms,
              times[1].backward_ms / times[0].backward_ms);
  return 0;
}

}  // namespace
}  // namespace trident::cuda

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return trident::cuda::Run();
}
