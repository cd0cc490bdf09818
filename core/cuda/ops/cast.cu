#include "core/cuda/ops/cast.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/cuda/float_io.cuh"
#include "core/cuda/ops/operand_checks.h"
#include "core/cuda/ops/pack_io.cuh"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per pack of N elements (pack_io.cuh). The value checked is the
// value stored (rounded to D), so an overflow of the destination counts.
template <typename S, typename D, int N>
__global__ void CastWithFiniteCheckKernel(const S* src, D* dst, int64_t n, float scale,
                                          int* flag) {
  const int64_t start = PackStart<N>();
  const int count = PackCount<N>(start, n);
  if (count <= 0) return;
  float v[N];
  LoadPack<N>(src + start, count, v);
  bool finite = true;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    v[k] = RoundTo<D>(v[k] * scale);
    if (k < count) finite = finite && isfinite(v[k]);
  }
  StorePack<N>(dst + start, count, v);
  if (!finite) *flag = 1;
}

}  // namespace

absl::Status CastWithFiniteCheck(cudaStream_t stream, const Tensor& src, const Tensor& dst,
                                 float scale, int* device_flag) {
  constexpr absl::string_view kOp = "CastWithFiniteCheck";
  RETURN_IF_ERROR(CheckFloatOperand(kOp, "src", src));
  RETURN_IF_ERROR(CheckFloatOperand(kOp, "dst", dst));
  RETURN_IF_ERROR(CheckSameShape(kOp, "dst", dst, "src", src));
  if (!std::isfinite(scale)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": scale is ", scale, ", must be finite"));
  }
  if (device_flag == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": device_flag is null"));
  }
  RETURN_IF_ERROR(CheckOnOneCudaDevice(kOp, {{"src", src}, {"dst", dst}}));
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, device_flag) != cudaSuccess ||
      attributes.type == cudaMemoryTypeUnregistered) {
    cudaGetLastError();  // Clear the query's error, if any: it is reported here.
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": device_flag is not device memory (nor mapped pinned host memory)"));
  }
  const int64_t n = src.numel();
  if (n == 0) return absl::OkStatus();
  return DispatchFloatStorage(src.dtype(), kOp, [&](auto s) {
    return DispatchFloatStorage(dst.dtype(), kOp, [&](auto d) {
      using S = decltype(s);
      using D = decltype(d);
      const S* ps = static_cast<const S*>(src.raw_data());
      D* pd = static_cast<D*>(dst.raw_data());
      return WithPackWidth(PackAligned<S>(ps) && PackAligned<D>(pd), [&](auto width) {
        constexpr int N = decltype(width)::value;
        CastWithFiniteCheckKernel<S, D, N><<<BlocksForPacks(n, N, kThreads), kThreads, 0, stream>>>(
            ps, pd, n, scale, device_flag);
        return LaunchStatus(kOp);
      });
    });
  });
}

}  // namespace trident::cuda
