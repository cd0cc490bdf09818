#ifndef TRIDENT_CORE_CUDA_DEVICE_INFO_H_
#define TRIDENT_CORE_CUDA_DEVICE_INFO_H_

// What the CUDA runtime reports about the GPUs of this machine, and a kernel
// round trip that proves a device really executes code built by our nvcc rule.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace trident::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  int64_t global_memory_bytes = 0;
  int64_t free_memory_bytes = 0;
  int memory_bus_width_bits = 0;
  int l2_cache_bytes = 0;
};

// The runtime and driver versions ("13.0") and every visible device. Fails with
// UNAVAILABLE (carrying the CUDA error text) when there is no usable GPU, e.g.
// "CUDA driver version is insufficient" on a machine without a driver.
struct CudaSystem {
  int runtime_version = 0;
  int driver_version = 0;
  std::vector<DeviceInfo> devices;
};
absl::StatusOr<CudaSystem> QueryCudaSystem();

// "13.0" from CUDA's integer version 13000.
std::string CudaVersionString(int version);

// Runs y = a * x + y on `device` for n elements with a kernel and checks every
// element on the host. OK when the device computed what the host expects.
absl::Status RunSaxpySelfTest(int device, int n);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_DEVICE_INFO_H_
