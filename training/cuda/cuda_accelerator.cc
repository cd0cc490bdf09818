// training/accelerator.h on CUDA: the visible GPUs from the runtime
// (core/cuda/device_info.h), a rank's context from core/cuda/cuda_context.h
// (its own non-blocking stream and caching allocator), inputs uploaded with
// stream-ordered copies (core/cuda/copy.h). Registered as "cuda" at start-up.

#include <cuda_runtime.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/cuda/copy.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/device_info.h"
#include "core/tensor.h"
#include "training/accelerator.h"

namespace trident::training {
namespace {

class CudaRank final : public AcceleratorRank {
 public:
  explicit CudaRank(cuda::CudaContext context) : context_(std::move(context)) {}

  const ExecContext& exec() const override { return context_.exec(); }

  absl::StatusOr<Tensor> Upload(const Tensor& host) const override {
    if (!host.device().is_cpu() || !host.is_contiguous()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Upload takes a contiguous host tensor, got ", host.DebugString()));
    }
    // From the context's caching allocator, so that reusing the block later
    // is ordered on the same stream as this copy.
    Tensor device = Tensor::Empty(host.shape(), host.dtype(), context_.allocator());
    const absl::Status copied =
        cuda::CopyTensorAsync(static_cast<cudaStream_t>(exec().stream()), host, device);
    if (!copied.ok()) return copied;
    return device;
  }

  absl::Status WaitForDevice() const override {
    if (const cudaError_t error = cudaSetDevice(context_.device_index()); error != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat("cudaSetDevice: ", cudaGetErrorString(error)));
    }
    if (const cudaError_t error = cudaDeviceSynchronize(); error != cudaSuccess) {
      return absl::UnavailableError(
          absl::StrCat("GPU ", context_.device_index(), ": ", cudaGetErrorString(error)));
    }
    return absl::OkStatus();
  }

 private:
  cuda::CudaContext context_;
};

class CudaAccelerator final : public Accelerator {
 public:
  absl::StatusOr<std::vector<AcceleratorDevice>> VisibleDevices() const override {
    absl::StatusOr<cuda::CudaSystem> system = cuda::QueryCudaSystem();
    if (!system.ok()) return absl::UnavailableError(system.status().message());
    if (system->devices.empty()) {
      return absl::UnavailableError("the CUDA runtime reports no device");
    }
    std::vector<AcceleratorDevice> devices;
    for (const cuda::DeviceInfo& info : system->devices) {
      devices.push_back(
          {.index = info.index, .name = info.name, .free_memory_bytes = info.free_memory_bytes});
    }
    return devices;
  }

  absl::StatusOr<std::unique_ptr<AcceleratorRank>> Open(int index) const override {
    absl::StatusOr<cuda::CudaContext> context = cuda::MakeCudaContext(index, "trainer");
    if (!context.ok()) return context.status();
    return std::unique_ptr<AcceleratorRank>(new CudaRank(*std::move(context)));
  }
};

const bool kRegistered = [] {
  RegisterAccelerator("cuda", std::make_unique<CudaAccelerator>());
  return true;
}();

}  // namespace
}  // namespace trident::training
