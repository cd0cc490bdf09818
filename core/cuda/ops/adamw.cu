#include "core/cuda/ops/adamw.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/chunk_table.h"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/pack_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

constexpr int64_t kChunk = int64_t{1} << 16;  // elements per block
constexpr int kThreads = 256;

// The per-element factors of one update, each rounded to fp32 once.
struct AdamWScalars {
  float step_size, bias_correction2_sqrt, decay_factor;
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, grad_scale;
};

// Up to kMaxTensorsPerLaunch parameters of one launch (chunk_table.h).
struct AdamWTable {
  int count;
  void* param[kMaxTensorsPerLaunch];
  const void* grad[kMaxTensorsPerLaunch];
  float* exp_avg[kMaxTensorsPerLaunch];
  float* exp_avg_sq[kMaxTensorsPerLaunch];
  int64_t numel[kMaxTensorsPerLaunch];
  int64_t first_chunk[kMaxTensorsPerLaunch + 1];
  DType param_dtype[kMaxTensorsPerLaunch];
  DType grad_dtype[kMaxTensorsPerLaunch];
  bool decay[kMaxTensorsPerLaunch];
};

// One element's update (see adamw.h); m and v are updated in place and the new
// parameter value returned. The _rn intrinsics round each operation and keep
// nvcc from fusing multiply-adds.
__device__ __forceinline__ float AdamWElement(const AdamWScalars& k, float decay_factor, float p,
                                              float g, float& m, float& v) {
  const float gi = __fmul_rn(g, k.grad_scale);
  const float mi = __fadd_rn(__fmul_rn(m, k.beta1), __fmul_rn(k.one_minus_beta1, gi));
  const float vi =
      __fadd_rn(__fmul_rn(v, k.beta2), __fmul_rn(__fmul_rn(k.one_minus_beta2, gi), gi));
  m = mi;
  v = vi;
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), k.bias_correction2_sqrt), k.eps);
  return __fsub_rn(__fmul_rn(p, decay_factor), __fmul_rn(k.step_size, __fdiv_rn(mi, denom)));
}

// Elements [begin, end) of one tensor: this thread's packs begin + tid * N,
// then every blockDim.x * N further (coalesced).
template <typename P, typename G, int N>
__device__ void UpdateRange(const AdamWScalars& k, float decay_factor, P* p, const G* g, float* m,
                            float* v, int64_t begin, int64_t end) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * N;
  for (int64_t i = begin + static_cast<int64_t>(threadIdx.x) * N; i < end; i += stride) {
    const int count = PackCount<N>(i, end);
    float vp[N], vg[N], vm[N], vv[N];
    LoadPack<N>(p + i, count, vp);
    LoadPack<N>(g + i, count, vg);
    LoadPack<N>(m + i, count, vm);
    LoadPack<N>(v + i, count, vv);
#pragma unroll
    for (int e = 0; e < N; ++e) vp[e] = AdamWElement(k, decay_factor, vp[e], vg[e], vm[e], vv[e]);
    StorePack<N>(p + i, count, vp);
    StorePack<N>(m + i, count, vm);
    StorePack<N>(v + i, count, vv);
  }
}

// Chunks start at multiples of 64 Ki elements: pack-aligned iff the bases are.
template <typename P, typename G>
__device__ void UpdateRangeAnyAlignment(const AdamWScalars& k, float decay_factor, void* param,
                                        const void* grad, float* m, float* v, int64_t begin,
                                        int64_t end) {
  P* p = static_cast<P*>(param);
  const G* g = static_cast<const G*>(grad);
  if (PackAligned<P>(p) && PackAligned<G>(g) && PackAligned<float>(m) &&
      PackAligned<float>(v)) {
    UpdateRange<P, G, kPack>(k, decay_factor, p, g, m, v, begin, end);
  } else {
    UpdateRange<P, G, 1>(k, decay_factor, p, g, m, v, begin, end);
  }
}

template <typename P>
__device__ void UpdateRangeForGrad(DType grad_dtype, const AdamWScalars& k, float decay_factor,
                                   void* param, const void* grad, float* m, float* v,
                                   int64_t begin, int64_t end) {
  switch (grad_dtype) {
    case DType::kFloat32:
      UpdateRangeAnyAlignment<P, float>(k, decay_factor, param, grad, m, v, begin, end);
      break;
    case DType::kBFloat16:
      UpdateRangeAnyAlignment<P, __nv_bfloat16>(k, decay_factor, param, grad, m, v, begin, end);
      break;
    case DType::kFloat16:
      UpdateRangeAnyAlignment<P, __half>(k, decay_factor, param, grad, m, v, begin, end);
      break;
    default:  // The host admits float dtypes only.
      break;
  }
}

// Block b updates chunk b - first_chunk[t] of tensor t. __grid_constant__: the
// table is read in place from the parameter bank (taking its address would
// otherwise copy all of it into every thread's local memory).
__global__ void MultiTensorAdamWKernel(const __grid_constant__ AdamWTable table,
                                       const AdamWScalars k) {
  const int64_t block = blockIdx.x;
  const int t = TensorOfBlock(table.first_chunk, table.count, block);
  const int64_t begin = (block - table.first_chunk[t]) * kChunk;
  const int64_t end = begin + kChunk < table.numel[t] ? begin + kChunk : table.numel[t];
  const float decay_factor = table.decay[t] ? k.decay_factor : 1.0f;
  void* param = table.param[t];
  const void* grad = table.grad[t];
  float* m = table.exp_avg[t];
  float* v = table.exp_avg_sq[t];
  switch (table.param_dtype[t]) {
    case DType::kFloat32:
      UpdateRangeForGrad<float>(table.grad_dtype[t], k, decay_factor, param, grad, m, v, begin,
                                end);
      break;
    case DType::kBFloat16:
      UpdateRangeForGrad<__nv_bfloat16>(table.grad_dtype[t], k, decay_factor, param, grad, m, v,
                                        begin, end);
      break;
    case DType::kFloat16:
      UpdateRangeForGrad<__half>(table.grad_dtype[t], k, decay_factor, param, grad, m, v, begin,
                                 end);
      break;
    default:
      break;
  }
}

absl::Status InvalidOption(absl::string_view op, absl::string_view field, double value,
                           absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": options.", field, " is ", value, ", must be ", rule));
}

absl::Status CheckOptions(absl::string_view op, const ops::AdamWOptions& o) {
  if (o.step < 1) {
    return InvalidOption(op, "step", static_cast<double>(o.step),
                         ">= 1 (the first update is step 1)");
  }
  if (!(std::isfinite(o.learning_rate) && o.learning_rate >= 0)) {
    return InvalidOption(op, "learning_rate", o.learning_rate, "finite and >= 0");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return InvalidOption(op, "beta1", o.beta1, "in [0, 1)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) return InvalidOption(op, "beta2", o.beta2, "in [0, 1)");
  if (!(std::isfinite(o.epsilon) && o.epsilon > 0)) {
    return InvalidOption(op, "epsilon", o.epsilon, "finite and > 0");
  }
  if (!(std::isfinite(o.weight_decay) && o.weight_decay >= 0)) {
    return InvalidOption(op, "weight_decay", o.weight_decay, "finite and >= 0");
  }
  if (!std::isfinite(o.grad_scale)) {
    return InvalidOption(op, "grad_scale", o.grad_scale,
                         "finite (handle a non-finite gradient norm before stepping)");
  }
  return absl::OkStatus();
}

// The CPU twin's scalars (core/ops/cpu/optimizer.cc), formed the same way.
AdamWScalars ScalarsOf(const ops::AdamWOptions& options) {
  const double step = static_cast<double>(options.step);
  const double bias_correction1 = 1.0 - std::pow(options.beta1, step);
  const double bias_correction2 = 1.0 - std::pow(options.beta2, step);
  AdamWScalars k;
  k.step_size = static_cast<float>(options.learning_rate / bias_correction1);
  k.bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  k.decay_factor = static_cast<float>(1.0 - options.learning_rate * options.weight_decay);
  k.beta1 = static_cast<float>(options.beta1);
  k.beta2 = static_cast<float>(options.beta2);
  k.one_minus_beta1 = static_cast<float>(1.0 - options.beta1);
  k.one_minus_beta2 = static_cast<float>(1.0 - options.beta2);
  k.eps = static_cast<float>(options.epsilon);
  k.grad_scale = options.grad_scale;
  return k;
}

// The names of one parameter's four tensors in messages.
struct AdamWNames {
  std::string param, grad, exp_avg, exp_avg_sq;
};

absl::Status CheckParameterTensors(absl::string_view op, const AdamWNames& names,
                                   const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                                   const Tensor& exp_avg_sq) {
  RETURN_IF_ERROR(CheckFloatOperand(op, names.param, param));
  RETURN_IF_ERROR(CheckFloatOperand(op, names.grad, grad));
  RETURN_IF_ERROR(CheckFloatOperand(op, names.exp_avg, exp_avg));
  RETURN_IF_ERROR(CheckFloatOperand(op, names.exp_avg_sq, exp_avg_sq));
  RETURN_IF_ERROR(CheckDType(op, names.exp_avg, exp_avg, DType::kFloat32));
  RETURN_IF_ERROR(CheckDType(op, names.exp_avg_sq, exp_avg_sq, DType::kFloat32));
  RETURN_IF_ERROR(CheckSameShape(op, names.grad, grad, names.param, param));
  RETURN_IF_ERROR(CheckSameShape(op, names.exp_avg, exp_avg, names.param, param));
  RETURN_IF_ERROR(CheckSameShape(op, names.exp_avg_sq, exp_avg_sq, names.param, param));
  return absl::OkStatus();
}

// Launches over tensors already checked.
absl::Status Launch(cudaStream_t stream, absl::string_view op, absl::Span<const Tensor> params,
                    absl::Span<const Tensor> grads, absl::Span<const Tensor> exp_avgs,
                    absl::Span<const Tensor> exp_avg_sqs,
                    absl::Span<const ops::WeightDecay> decays, const AdamWScalars& k) {
  std::vector<int64_t> numels;
  for (const Tensor& p : params) numels.push_back(p.numel());
  for (const ChunkLaunch& launch : PlanChunkLaunches(numels, kChunk)) {
    AdamWTable table{};
    table.count = static_cast<int>(launch.tensors.size());
    for (int t = 0; t < table.count; ++t) {
      const int i = launch.tensors[t];
      table.param[t] = params[i].raw_data();
      table.grad[t] = grads[i].raw_data();
      table.exp_avg[t] = static_cast<float*>(exp_avgs[i].raw_data());
      table.exp_avg_sq[t] = static_cast<float*>(exp_avg_sqs[i].raw_data());
      table.numel[t] = params[i].numel();
      table.first_chunk[t] = launch.first_chunk[t];
      table.param_dtype[t] = params[i].dtype();
      table.grad_dtype[t] = grads[i].dtype();
      table.decay[t] = decays[i] == ops::WeightDecay::kApply;
    }
    table.first_chunk[table.count] = launch.first_chunk[table.count];
    const unsigned blocks = static_cast<unsigned>(launch.first_chunk.back());
    MultiTensorAdamWKernel<<<blocks, kThreads, 0, stream>>>(table, k);
    RETURN_IF_ERROR(LaunchStatus(op));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AdamWStep(cudaStream_t stream, const Tensor& param, const Tensor& grad,
                       const Tensor& exp_avg, const Tensor& exp_avg_sq,
                       const ops::AdamWOptions& options, ops::WeightDecay decay) {
  constexpr absl::string_view kOp = "AdamWStep";
  RETURN_IF_ERROR(CheckParameterTensors(kOp, {"param", "grad", "exp_avg", "exp_avg_sq"}, param,
                                        grad, exp_avg, exp_avg_sq));
  RETURN_IF_ERROR(CheckOptions(kOp, options));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"param", param},
                                             {"grad", grad},
                                             {"exp_avg", exp_avg},
                                             {"exp_avg_sq", exp_avg_sq}}));
  return Launch(stream, kOp, absl::MakeConstSpan(&param, 1), absl::MakeConstSpan(&grad, 1),
                absl::MakeConstSpan(&exp_avg, 1), absl::MakeConstSpan(&exp_avg_sq, 1),
                absl::MakeConstSpan(&decay, 1), ScalarsOf(options));
}

absl::Status MultiTensorAdamW(cudaStream_t stream, absl::Span<const Tensor> params,
                              absl::Span<const Tensor> grads, absl::Span<const Tensor> exp_avgs,
                              absl::Span<const Tensor> exp_avg_sqs,
                              absl::Span<const ops::WeightDecay> decays,
                              const ops::AdamWOptions& options) {
  constexpr absl::string_view kOp = "MultiTensorAdamW";
  const size_t n = params.size();
  const std::pair<absl::string_view, size_t> lengths[] = {{"grads", grads.size()},
                                                          {"exp_avgs", exp_avgs.size()},
                                                          {"exp_avg_sqs", exp_avg_sqs.size()},
                                                          {"decays", decays.size()}};
  for (const auto& [name, size] : lengths) {
    if (size != n) {
      return absl::InvalidArgumentError(absl::StrCat(kOp, ": ", name, " has ", size,
                                                     " entries, expected ", n,
                                                     " (the number of params)"));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string index = absl::StrCat("[", i, "]");
    RETURN_IF_ERROR(CheckParameterTensors(
        kOp,
        {absl::StrCat("params", index), absl::StrCat("grads", index),
         absl::StrCat("exp_avgs", index), absl::StrCat("exp_avg_sqs", index)},
        params[i], grads[i], exp_avgs[i], exp_avg_sqs[i]));
  }
  RETURN_IF_ERROR(CheckOptions(kOp, options));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, "params", params));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, "grads", grads));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, "exp_avgs", exp_avgs));
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, "exp_avg_sqs", exp_avg_sqs));
  if (n > 0) {
    for (absl::Span<const Tensor> list : {grads, exp_avgs, exp_avg_sqs}) {
      if (list[0].device() != params[0].device()) {
        return absl::InvalidArgumentError(absl::StrCat(
            kOp, ": tensors are on ", list[0].device().ToString(), " and ",
            params[0].device().ToString(), ", expected one device"));
      }
    }
  }
  return Launch(stream, kOp, params, grads, exp_avgs, exp_avg_sqs, decays, ScalarsOf(options));
}

}  // namespace trident::cuda
