// Timings of the core/cuda/ops kernels on one GPU, each against a baseline
// measured in the same run (not a test; needs a GPU):
//   - MultiTensorAdamW over GPT-2 small's 148 parameter tensors against
//     AdamWStep called once per tensor, and against a device-to-device copy of
//     copy moving as many bytes as AdamW must (fp32 p, m, v read and
//     written, g read: 28 bytes per element), its memory-bandwidth floor;
//   - MultiTensorSumOfSquares against SumOfSquares per tensor (each syncs);
//   - Add, GeluForward, BiasGrad on GPT-2 small activations (8 x 1024 tokens)
//     against a device-to-device copy moving as many bytes (BiasGrad reads
//     dy once: the copy moves dy's size).
// Times are CUDA-event averages over --iters calls after 3 warm-up calls.
//
//   bazel run -c opt //bench/gpu_ops:gpu_ops_bench -- [iters]

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "core/cuda/cuda_allocator.h"
#include "core/cuda/ops/adamw.h"
#include "core/cuda/ops/elementwise.h"
#include "core/cuda/ops/gelu.h"
#include "core/cuda/ops/reduction.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::cuda {
namespace {

void Check(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::fprintf(stderr, "gpu_ops_bench: %s: %s\n", what, status.ToString().c_str());
  std::exit(1);
}

void CheckCuda(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return;
  std::fprintf(stderr, "gpu_ops_bench: %s: %s\n", what, cudaGetErrorString(error));
  std::exit(1);
}

// Microseconds per call of fn (returning absl::Status), CUDA events around
// `iters` calls after 3 warm-up calls.
template <typename Fn>
double MicrosecondsPerCall(int iters, const char* what, Fn fn) {
  for (int i = 0; i < 3; ++i) Check(fn(), what);
  cudaEvent_t start, stop;
  CheckCuda(cudaEventCreate(&start), "cudaEventCreate");
  CheckCuda(cudaEventCreate(&stop), "cudaEventCreate");
  CheckCuda(cudaEventRecord(start, nullptr), "cudaEventRecord");
  for (int i = 0; i < iters; ++i) Check(fn(), what);
  CheckCuda(cudaEventRecord(stop, nullptr), "cudaEventRecord");
  CheckCuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  CheckCuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 1000.0 * ms / iters;
}

// A device-to-device copy that moves `traffic` bytes (reads traffic / 2 and
// writes as many): the memory-bandwidth baseline of a kernel moving as much.
double CopyMicroseconds(const std::shared_ptr<Allocator>& allocator, int64_t traffic, int iters) {
  const int64_t words = (traffic / 2 + 3) / 4;
  const Tensor src = Tensor::Zeros({words}, DType::kInt32, allocator);
  const Tensor dst = Tensor::Zeros({words}, DType::kInt32, allocator);
  return MicrosecondsPerCall(iters, "copy", [&] {
    const cudaError_t error = cudaMemcpyAsync(dst.raw_data(), src.raw_data(), words * 4,
                                              cudaMemcpyDeviceToDevice, nullptr);
    return error == cudaSuccess ? absl::OkStatus() : absl::UnavailableError("cudaMemcpyAsync");
  });
}

void Row(const std::string& name, double us, const std::string& baseline, double baseline_us,
         int64_t bytes) {
  std::printf("%-44s %10.1f us %8.0f GB/s   %-34s %10.1f us   ratio %.2f\n", name.c_str(), us,
              bytes / (us * 1e3), baseline.c_str(), baseline_us, us / baseline_us);
}

int Main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 20;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "gpu_ops_bench: no CUDA device here\n");
    return 2;
  }
  auto created = CudaCachingAllocator::Create(0, "gpu_ops_bench");
  Check(created.status(), "allocator");
  const std::shared_ptr<Allocator> allocator = *created;
  cudaDeviceProp prop{};
  CheckCuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::printf("device: %s, %d iterations per timing\n\n", prop.name, iters);

  // GPT-2 small's parameters (d = 768, 12 layers, vocabulary 50257, 1024
  // positions): decay on the block matrices only.
  constexpr int64_t d = 768;
  std::vector<std::vector<int64_t>> shapes = {{50257, d}, {1024, d}};
  std::vector<ops::WeightDecay> decays = {ops::WeightDecay::kSkip, ops::WeightDecay::kSkip};
  for (int layer = 0; layer < 12; ++layer) {
    for (const auto& [shape, decay] :
         std::vector<std::pair<std::vector<int64_t>, ops::WeightDecay>>{
             {{d}, ops::WeightDecay::kSkip},          {{d}, ops::WeightDecay::kSkip},
             {{d, 3 * d}, ops::WeightDecay::kApply},  {{3 * d}, ops::WeightDecay::kSkip},
             {{d, d}, ops::WeightDecay::kApply},      {{d}, ops::WeightDecay::kSkip},
             {{d}, ops::WeightDecay::kSkip},          {{d}, ops::WeightDecay::kSkip},
             {{d, 4 * d}, ops::WeightDecay::kApply},  {{4 * d}, ops::WeightDecay::kSkip},
             {{4 * d, d}, ops::WeightDecay::kApply},  {{d}, ops::WeightDecay::kSkip}}) {
      shapes.push_back(shape);
      decays.push_back(decay);
    }
  }
  shapes.push_back({d});
  shapes.push_back({d});
  decays.push_back(ops::WeightDecay::kSkip);
  decays.push_back(ops::WeightDecay::kSkip);
  std::vector<Tensor> params, grads, ms, vs;
  int64_t elements = 0;
  for (const auto& shape : shapes) {
    params.push_back(Tensor::Zeros(shape, DType::kFloat32, allocator));
    grads.push_back(Tensor::Zeros(shape, DType::kFloat32, allocator));
    ms.push_back(Tensor::Zeros(shape, DType::kFloat32, allocator));
    vs.push_back(Tensor::Zeros(shape, DType::kFloat32, allocator));
    elements += params.back().numel();
  }
  std::printf("GPT-2 small: %zu parameter tensors, %lld elements\n", params.size(),
              static_cast<long long>(elements));
  ops::AdamWOptions options;
  options.weight_decay = 0.1;
  const int64_t adamw_bytes = elements * 28;  // p, m, v read + written; g read (fp32)
  const double multi = MicrosecondsPerCall(iters, "MultiTensorAdamW", [&] {
    return MultiTensorAdamW(nullptr, params, grads, ms, vs, decays, options);
  });
  const double per_tensor = MicrosecondsPerCall(iters, "AdamWStep", [&] {
    for (size_t i = 0; i < params.size(); ++i) {
      absl::Status status = AdamWStep(nullptr, params[i], grads[i], ms[i], vs[i], options,
                                      decays[i]);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  });
  const double adamw_copy = CopyMicroseconds(allocator, adamw_bytes, iters);
  Row("MultiTensorAdamW (148 tensors, fp32)", multi, "AdamWStep per tensor", per_tensor,
      adamw_bytes);
  Row("MultiTensorAdamW (148 tensors, fp32)", multi, "D2D copy moving as many bytes", adamw_copy,
      adamw_bytes);

  const double multi_norm = MicrosecondsPerCall(iters, "MultiTensorSumOfSquares", [&] {
    return MultiTensorSumOfSquares(nullptr, grads).status();
  });
  const double per_tensor_norm = MicrosecondsPerCall(iters, "SumOfSquares", [&] {
    for (const Tensor& g : grads) {
      const absl::StatusOr<double> s = SumOfSquares(nullptr, g);
      if (!s.ok()) return s.status();
    }
    return absl::OkStatus();
  });
  Row("MultiTensorSumOfSquares (148 tensors)", multi_norm, "SumOfSquares per tensor",
      per_tensor_norm, elements * 4);
  std::printf("\n");

  // Activations of 8 x 1024 tokens.
  constexpr int64_t tokens = 8 * 1024;
  for (DType dtype : {DType::kFloat32, DType::kBFloat16}) {
    const std::string suffix = absl::StrFormat(" [%d, %d] %s", tokens, d, DTypeName(dtype));
    const Tensor a = Tensor::Zeros({tokens, d}, dtype, allocator);
    const Tensor b = Tensor::Zeros({tokens, d}, dtype, allocator);
    const Tensor out = Tensor::Zeros({tokens, d}, dtype, allocator);
    const int64_t add_bytes = 3 * a.nbytes();
    Row("Add" + suffix, MicrosecondsPerCall(iters, "Add", [&] { return Add(nullptr, a, b, out); }),
        "D2D copy moving as many bytes", CopyMicroseconds(allocator, add_bytes, iters), add_bytes);

    const Tensor h = Tensor::Zeros({tokens, 4 * d}, dtype, allocator);
    const Tensor gelu = Tensor::Zeros({tokens, 4 * d}, dtype, allocator);
    const int64_t gelu_bytes = 2 * h.nbytes();
    Row(absl::StrFormat("GeluForward [%d, %d] %s", tokens, 4 * d, DTypeName(dtype)),
        MicrosecondsPerCall(iters, "GeluForward", [&] { return GeluForward(nullptr, h, gelu); }),
        "D2D copy moving as many bytes", CopyMicroseconds(allocator, gelu_bytes, iters), gelu_bytes);

    for (int64_t cols : {d, 4 * d}) {
      const Tensor dy = Tensor::Zeros({tokens, cols}, dtype, allocator);
      const Tensor dbias = Tensor::Zeros({cols}, DType::kFloat32, allocator);
      Row(absl::StrFormat("BiasGrad [%d, %d] %s", tokens, cols, DTypeName(dtype)),
          MicrosecondsPerCall(iters, "BiasGrad", [&] { return BiasGrad(nullptr, dy, dbias); }),
          "D2D copy moving as many bytes", CopyMicroseconds(allocator, dy.nbytes(), iters),
          dy.nbytes());
    }
  }
  return 0;
}

}  // namespace
}  // namespace trident::cuda

int main(int argc, char** argv) { return trident::cuda::Main(argc, argv); }
