// Prints the CUDA runtime, driver and devices of this machine and runs a small
// kernel on each device. Exit status 0 only when every device passed.
//
//   bazel run //core/cuda:device_query

#include <cstdio>

#include "core/cuda/device_info.h"

int main() {
  auto system = trident::cuda::QueryCudaSystem();
  if (!system.ok()) {
    std::fprintf(stderr, "no usable CUDA device: %s\n", system.status().ToString().c_str());
    return 1;
  }
  std::printf("CUDA runtime %s, driver %s, %zu device(s)\n",
              trident::cuda::CudaVersionString(system->runtime_version).c_str(),
              trident::cuda::CudaVersionString(system->driver_version).c_str(),
              system->devices.size());
  int failures = 0;
  for (const auto& d : system->devices) {
    std::printf("  [%d] %s  sm_%d%d  %d SMs  %.1f GiB (%.1f GiB free)  bus %d bit  L2 %.0f MiB\n",
                d.index, d.name.c_str(), d.compute_major, d.compute_minor, d.multiprocessors,
                d.global_memory_bytes / 1073741824.0, d.free_memory_bytes / 1073741824.0,
                d.memory_bus_width_bits, d.l2_cache_bytes / 1048576.0);
    const auto check = trident::cuda::RunSaxpySelfTest(d.index, 1 << 20);
    std::printf("      saxpy self-test: %s\n", check.ok() ? "ok" : check.ToString().c_str());
    if (!check.ok()) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
