#include "core/cuda/device_info.h"

#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(CudaVersionStringTest, FormatsMajorMinor) {
  EXPECT_EQ(CudaVersionString(13000), "13.0");
  EXPECT_EQ(CudaVersionString(12040), "12.4");
}

TEST(DeviceInfoTest, EveryDeviceRunsAKernel) {
  auto system = QueryCudaSystem();
  if (!system.ok() || system->devices.empty()) {
    GTEST_SKIP() << "no CUDA device here: "
                 << (system.ok() ? "zero devices" : system.status().ToString());
  }
  for (const auto& device : system->devices) {
    EXPECT_GT(device.multiprocessors, 0);
    EXPECT_GT(device.global_memory_bytes, 0);
    EXPECT_TRUE(RunSaxpySelfTest(device.index, 12345).ok()) << device.name;
  }
}

}  // namespace
}  // namespace trident::cuda
