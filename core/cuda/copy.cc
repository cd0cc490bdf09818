#include "core/cuda/copy.h"

#include "absl/strings/str_cat.h"
#include "core/cuda/host_sync.h"

namespace trident::cuda {

absl::Status CopyTensorAsync(cudaStream_t stream, const Tensor& src, const Tensor& dst) {
  if (!src.defined() || !dst.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CopyTensorAsync: ", src.defined() ? "dst" : "src", " is undefined"));
  }
  if (src.dtype() != dst.dtype() || src.shape() != dst.shape()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CopyTensorAsync: src is ", DTypeName(src.dtype()), ShapeToString(src.shape()), ", dst is ",
        DTypeName(dst.dtype()), ShapeToString(dst.shape()), ": dtype and shape must match"));
  }
  if (!src.is_contiguous() || !dst.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CopyTensorAsync: ", src.is_contiguous() ? "dst" : "src", " must be contiguous"));
  }
  if (src.nbytes() == 0) return absl::OkStatus();
  // Into pageable host memory the copy returns once the data has landed: the
  // host waits for the stream (copy.h).
  if (dst.device().is_cpu() && !src.device().is_cpu()) CountHostSync();
  const cudaError_t error =
      cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDefault, stream);
  if (error != cudaSuccess) {
    return absl::UnavailableError(
        absl::StrCat("CopyTensorAsync ", src.device().ToString(), " -> ", dst.device().ToString(),
                     ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
