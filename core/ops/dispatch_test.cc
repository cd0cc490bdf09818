#include "core/ops/dispatch.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/elementwise.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

// Host memory posing as GPU memory, so the dispatch path of a second device can
// be exercised without one.
class FakeGpuAllocator final : public Allocator {
 public:
  FakeGpuAllocator() : Allocator("fake-gpu") {}
  Device device() const override { return Device::Cuda(0); }
  void CopyFromHost(void* dst, const void* src, size_t bytes) const override {
    std::memcpy(dst, src, bytes);
  }
  void CopyToHost(void* dst, const void* src, size_t bytes) const override {
    std::memcpy(dst, src, bytes);
  }
  void SetZero(void* dst, size_t bytes) const override { std::memset(dst, 0, bytes); }

 protected:
  void* RawAllocate(size_t bytes) override {
    return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  }
  void RawFree(void* ptr, size_t) override { std::free(ptr); }
};

// A "GPU" backend that runs the CPU kernels and counts the calls it receives.
class CountingBackend final : public cpu::CpuBackendImpl {
 public:
  absl::string_view name() const override { return "counting"; }
  void Fill(const ExecContext& ctx, const Tensor& x, float value) const override {
    ++fills;
    cpu::CpuBackendImpl::Fill(ctx, x, value);
  }
  mutable int fills = 0;
};

// The CPU kernels behind the 16-bit storage decorator (float16_storage.h):
// fp32 calls reach them unchanged.
TEST(DispatchTest, CpuContextsUseTheCpuBackend) {
  EXPECT_EQ(BackendFor(ExecContext::Cpu()).name(), "cpu");
  EXPECT_EQ(BackendFor(ExecContext::Cpu(2)).name(), cpu::CpuBackend().name());
  Tensor x = Tensor::Zeros({3}, DType::kBFloat16);
  BackendFor(ExecContext::Cpu()).Fill(ExecContext::Cpu(), x, 1.5f);  // bf16 accepted
  Tensor x32 = Tensor::Empty({3}, DType::kFloat32);
  BackendFor(ExecContext::Cpu()).Copy(ExecContext::Cpu(), x, x32);
  EXPECT_EQ(x32.ToVector<float>(), (std::vector<float>{1.5f, 1.5f, 1.5f}));
}

TEST(DispatchDeathTest, AnUnregisteredDeviceAbortsWithAMessage) {
  EXPECT_DEATH(
      {
        SetDefaultAllocator(Device::Cuda(0), std::make_shared<FakeGpuAllocator>());
        ExecContext gpu(Device::Cuda(0), nullptr, 1, nullptr);
        BackendFor(gpu);
      },
      "no op backend is registered for cuda:0");
}

TEST(DispatchTest, ARegisteredBackendReceivesItsDevicesOps) {
  SetDefaultAllocator(Device::Cuda(0), std::make_shared<FakeGpuAllocator>());
  static CountingBackend* backend = new CountingBackend;
  RegisterBackend(DeviceType::kCuda, backend);
  ExecContext gpu(Device::Cuda(0), /*stream=*/nullptr, 1, nullptr);
  Tensor x = Tensor::Empty({4}, DType::kFloat32, Device::Cuda(0));
  Fill(gpu, x, 3.0f);
  EXPECT_EQ(backend->fills, 1);
  EXPECT_EQ(x.ToVector<float>(), std::vector<float>(4, 3.0f));
  // The CPU backend is unaffected.
  Tensor y = Tensor::Empty({4}, DType::kFloat32);
  Fill(ExecContext::Cpu(), y, 1.0f);
  EXPECT_EQ(backend->fills, 1);
}

TEST(DispatchDeathTest, TensorsOnAnotherDeviceAreRefused) {
  EXPECT_DEATH(
      {
        SetDefaultAllocator(Device::Cuda(0), std::make_shared<FakeGpuAllocator>());
        Tensor gpu_tensor = Tensor::Empty({4}, DType::kFloat32, Device::Cuda(0));
        Fill(ExecContext::Cpu(), gpu_tensor, 1.0f);
      },
      "x \\(fp32\\[4\\] cuda:0\\) is on cuda:0 but the context runs on cpu");
}

}  // namespace
}  // namespace trident::ops
