// Throughput of the core/cuda/ops kernels at GPT-2 124M's shapes, for tuning
// (not a test):
//   bazel run -c opt //core/cuda/ops:kernel_bench
// Each kernel is timed with CUDA events over enough calls to run ~200 ms and
// reported as milliseconds per call, GB/s of compulsory traffic (bytes each
// call must read and write at least once), and the ratio of that rate to a
// device-to-device cudaMemcpy measured in the same run (the copy ceiling: 1.0
// means the kernel moves its bytes as fast as a plain copy). Exits 2 without a
// GPU, having measured nothing.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_allocator.h"
#include "core/cuda/gpu_test_util.h"
#include "core/cuda/ops/cross_entropy.h"
#include "core/cuda/ops/embedding.h"
#include "core/cuda/ops/layer_norm.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::cuda {
namespace {

constexpr int64_t kBatch = 8, kSeq = 1024, kWidth = 768, kVocab = 50304, kVocabReal = 50257;
constexpr int64_t kTokens = kBatch * kSeq;

// Milliseconds per call of `call` (which queues work on the legacy stream),
// over enough calls to take ~200 ms after a warm-up call. Aborts the bench on
// an error status.
double MsPerCall(const std::string& name, const std::function<absl::Status()>& call) {
  auto run = [&](int reps) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, nullptr);
    for (int i = 0; i < reps; ++i) {
      const absl::Status status = call();
      if (!status.ok()) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(), status.ToString().c_str());
        std::exit(1);
      }
    }
    cudaEventRecord(stop, nullptr);
    if (const cudaError_t e = cudaEventSynchronize(stop); e != cudaSuccess) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), cudaGetErrorString(e));
      std::exit(1);
    }
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return static_cast<double>(ms) / reps;
  };
  const double estimate = run(1);  // Warm-up and estimate.
  const int reps = static_cast<int>(std::min(1000.0, std::max(5.0, 200.0 / estimate)));
  return run(reps);
}

// A device tensor of `shape` and `dtype` with values uniform in [lo, hi): a
// random block of 2^20 values repeated (enough for timing).
Tensor Filled(const Shape& shape, DType dtype, const std::shared_ptr<Allocator>& gpu,
              std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  const std::vector<float> block = RandomValues(rng, dtype, 1 << 20, lo, hi);
  std::vector<float> values(NumElements(shape));
  for (size_t i = 0; i < values.size(); ++i) values[i] = block[i % block.size()];
  return Upload(values, shape, dtype, gpu);
}

Tensor Ids(const std::vector<int32_t>& ids, const Shape& shape,
           const std::shared_ptr<Allocator>& gpu) {
  const Tensor t = Tensor::Empty(shape, DType::kInt32, gpu);
  t.CopyFrom(ids);
  return t;
}

struct Reporter {
  double copy_gbps = 0.0;
  void Row(const std::string& op, DType dtype, double ms, double bytes) const {
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    std::printf("%-34s %-5s %9.4f ms %9.1f GB/s %6.2f x copy\n", op.c_str(),
                std::string(DTypeName(dtype)).c_str(), ms, gbps, gbps / copy_gbps);
  }
};

int Main() {
  std::string reason;
  const std::shared_ptr<Allocator> gpu = GpuAllocatorOrNull("kernel_bench", &reason);
  if (gpu == nullptr) {
    std::fprintf(stderr, "kernel_bench: no CUDA device (%s): nothing measured\n", reason.c_str());
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("kernel_bench on %s; B x T = %lld x %lld, C = %lld, V = %lld (%lld real)\n",
              prop.name, static_cast<long long>(kBatch), static_cast<long long>(kSeq),
              static_cast<long long>(kWidth), static_cast<long long>(kVocab),
              static_cast<long long>(kVocabReal));
  std::mt19937 rng(1234);
  Reporter report;

  // The copy ceiling: 256 MiB device to device (read + write).
  {
    const int64_t bytes = int64_t{256} << 20;
    void* src = nullptr;
    void* dst = nullptr;
    cudaMalloc(&src, bytes);
    cudaMalloc(&dst, bytes);
    const double ms = MsPerCall("cudaMemcpy", [&] {
      return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr) == cudaSuccess
                 ? absl::OkStatus()
                 : absl::UnavailableError("cudaMemcpyAsync failed");
    });
    report.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
    std::printf("%-34s %-5s %9.4f ms %9.1f GB/s   1.00 x copy (the baseline)\n",
                "cudaMemcpy D2D 256 MiB", "-", ms, report.copy_gbps);
    cudaFree(src);
    cudaFree(dst);
  }

  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    const double s = static_cast<double>(DTypeSize(dtype));
    const Shape act{kBatch, kSeq, kWidth};
    const double act_bytes = kTokens * kWidth * s;
    const Tensor x = Filled(act, dtype, gpu, rng);
    const Tensor b = Filled(act, dtype, gpu, rng);
    const Tensor dy = Filled(act, dtype, gpu, rng);
    const Tensor out = Tensor::Empty(act, dtype, gpu);
    const Tensor sum = Tensor::Empty(act, dtype, gpu);
    const Tensor gamma = Filled({kWidth}, dtype, gpu, rng);
    const Tensor beta = Filled({kWidth}, dtype, gpu, rng);
    const Tensor dgamma = Tensor::Zeros({kWidth}, dtype, gpu);
    const Tensor dbeta = Tensor::Zeros({kWidth}, dtype, gpu);
    const Tensor mean = Tensor::Empty({kBatch, kSeq}, DType::kFloat32, gpu);
    const Tensor rstd = Tensor::Empty({kBatch, kSeq}, DType::kFloat32, gpu);
    const float eps = 1e-5f;

    report.Row(
        "LayerNormForward", dtype,
        MsPerCall("LayerNormForward",
                  [&] { return LayerNormForward(nullptr, x, gamma, beta, eps, out, mean, rstd); }),
        2 * act_bytes);
    report.Row("AddLayerNormForward", dtype,
               MsPerCall("AddLayerNormForward",
                         [&] {
                           return AddLayerNormForward(nullptr, x, b, gamma, beta, eps, sum, out,
                                                      mean, rstd);
                         }),
               4 * act_bytes);
    report.Row(
        "LayerNormBackwardInput", dtype,
        MsPerCall("LayerNormBackwardInput",
                  [&] { return LayerNormBackwardInput(nullptr, x, gamma, mean, rstd, dy, out); }),
        3 * act_bytes);
    report.Row(
        "AddLayerNormBackwardInput", dtype,
        MsPerCall(
            "AddLayerNormBackwardInput",
            [&] { return AddLayerNormBackwardInput(nullptr, x, gamma, mean, rstd, dy, b, out); }),
        4 * act_bytes);
    report.Row(
        "LayerNormBackwardWeights", dtype,
        MsPerCall(
            "LayerNormBackwardWeights",
            [&] { return LayerNormBackwardWeights(nullptr, x, mean, rstd, dy, dgamma, dbeta); }),
        2 * act_bytes);

    // Embeddings: token ids uniform over the real vocabulary.
    std::uniform_int_distribution<int32_t> token(0, kVocabReal - 1);
    std::vector<int32_t> ids(kTokens);
    for (int32_t& id : ids) id = token(rng);
    const double distinct = static_cast<double>(std::set<int32_t>(ids.begin(), ids.end()).size());
    const Tensor g_ids = Ids(ids, {kBatch, kSeq}, gpu);
    const Tensor wte = Filled({kVocab, kWidth}, dtype, gpu, rng);
    const Tensor dwte = Tensor::Zeros({kVocab, kWidth}, dtype, gpu);
    const Tensor wpe = Filled({kSeq, kWidth}, dtype, gpu, rng);
    const Tensor dwpe = Tensor::Zeros({kSeq, kWidth}, dtype, gpu);
    const double row_bytes = kWidth * s;
    report.Row(
        "GatherRows", dtype,
        MsPerCall(
            "GatherRows",
            [&] { return GatherRows(nullptr, g_ids, wte, 0, ops::OutOfRangeIds::kAbort, out); }),
        2 * act_bytes);
    report.Row("ScatterAddRows (incl. sort)", dtype,
               MsPerCall("ScatterAddRows",
                         [&] {
                           return ScatterAddRows(nullptr, g_ids, dy, 0, ops::OutOfRangeIds::kAbort,
                                                 dwte);
                         }),
               act_bytes + 2 * distinct * row_bytes);
    report.Row(
        "AddPositionEmbedding", dtype,
        MsPerCall("AddPositionEmbedding", [&] { return AddPositionEmbedding(nullptr, wpe, out); }),
        2 * act_bytes + kSeq * row_bytes);
    report.Row("PositionEmbeddingGrad", dtype,
               MsPerCall("PositionEmbeddingGrad",
                         [&] { return PositionEmbeddingGrad(nullptr, dy, dwpe); }),
               act_bytes + 2 * kSeq * row_bytes);

    // Cross-entropy over GPT-2's padded vocabulary, the logits of 4 x 1024
    // tokens (1.6 GB in fp32).
    const int64_t rows = 4 * kSeq;
    const double logit_bytes = rows * kVocab * s;
    const Tensor logits = Filled({rows, kVocab}, dtype, gpu, rng, -6.0f, 6.0f);
    const Tensor dlogits = Tensor::Empty({rows, kVocab}, dtype, gpu);
    std::vector<int32_t> targets(rows);
    for (int32_t& t : targets) t = token(rng);
    const Tensor g_targets = Ids(targets, {rows}, gpu);
    const Tensor losses = Tensor::Empty({rows}, DType::kFloat32, gpu);
    const Tensor lse = Tensor::Empty({rows}, DType::kFloat32, gpu);
    const ops::CrossEntropyOptions options{.valid_columns = kVocabReal};
    report.Row(
        "CrossEntropyForward", dtype,
        MsPerCall(
            "CrossEntropyForward",
            [&] { return CrossEntropyForward(nullptr, logits, g_targets, options, losses, lse); }),
        logit_bytes);
    report.Row("CrossEntropyBackward", dtype,
               MsPerCall("CrossEntropyBackward",
                         [&] {
                           return CrossEntropyBackward(nullptr, logits, g_targets, lse, 1.0f / rows,
                                                       options, dlogits);
                         }),
               2 * logit_bytes);
  }
  return 0;
}

}  // namespace
}  // namespace trident::cuda

int main() { return trident::cuda::Main(); }
