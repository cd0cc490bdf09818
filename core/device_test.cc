#include "core/device.h"

#include <cstdint>
#include <vector>

#include "core/exec_context.h"
#include "gtest/gtest.h"

namespace trident {
namespace {

TEST(DeviceTest, NamesAndEquality) {
  EXPECT_EQ(Device::Cpu().ToString(), "cpu");
  EXPECT_EQ(Device::Cuda(3).ToString(), "cuda:3");
  EXPECT_EQ(Device::Cuda(1), Device::Cuda(1));
  EXPECT_NE(Device::Cuda(0), Device::Cuda(1));
  EXPECT_NE(Device::Cpu(), Device::Cuda(0));
  EXPECT_TRUE(Device::Cpu().is_cpu());
  EXPECT_TRUE(Device::Cuda(0).is_cuda());
}

TEST(CpuAllocatorTest, AlignsAndCountsCurrentAndPeakBytes) {
  auto allocator = CpuAllocator::Create("test");
  EXPECT_EQ(allocator->name(), "test");
  EXPECT_EQ(allocator->Allocate(0), nullptr);
  void* a = allocator->Allocate(100);
  void* b = allocator->Allocate(1000);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % Allocator::kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % Allocator::kAlignment, 0u);
  EXPECT_EQ(allocator->bytes_in_use(), 1100);
  EXPECT_EQ(allocator->live_blocks(), 2);
  allocator->Free(b, 1000);
  EXPECT_EQ(allocator->bytes_in_use(), 100);
  EXPECT_EQ(allocator->peak_bytes(), 1100);
  allocator->ResetPeak();
  EXPECT_EQ(allocator->peak_bytes(), 100);
  void* c = allocator->Allocate(50);
  EXPECT_EQ(allocator->peak_bytes(), 150);
  allocator->Free(a, 100);
  allocator->Free(c, 50);
  EXPECT_EQ(allocator->bytes_in_use(), 0);
  EXPECT_EQ(allocator->live_blocks(), 0);
  EXPECT_EQ(allocator->peak_bytes(), 150);
}

TEST(CpuAllocatorTest, HostTransfersAndZeroing) {
  auto allocator = CpuAllocator::Create();
  std::vector<int32_t> src = {1, 2, 3, 4};
  auto* p = static_cast<int32_t*>(allocator->Allocate(16));
  allocator->CopyFromHost(p, src.data(), 16);
  std::vector<int32_t> back(4);
  allocator->CopyToHost(back.data(), p, 16);
  EXPECT_EQ(back, src);
  allocator->SetZero(p, 8);
  allocator->CopyToHost(back.data(), p, 16);
  EXPECT_EQ(back, (std::vector<int32_t>{0, 0, 3, 4}));
  allocator->Free(p, 16);
}

TEST(DefaultAllocatorTest, CpuExistsAndCanBeReplaced) {
  std::shared_ptr<Allocator> original = DefaultAllocator(Device::Cpu());
  ASSERT_NE(original, nullptr);
  EXPECT_EQ(original->device(), Device::Cpu());
  auto mine = CpuAllocator::Create("mine");
  SetDefaultAllocator(Device::Cpu(), mine);
  EXPECT_EQ(DefaultAllocator(Device::Cpu()), mine);
  SetDefaultAllocator(Device::Cpu(), original);
  EXPECT_EQ(DefaultAllocator(Device::Cpu()), original);
}

TEST(DefaultAllocatorDeathTest, MissingDeviceAndMismatchedDeviceAbort) {
  EXPECT_DEATH(DefaultAllocator(Device::Cuda(7)), "no allocator is registered for device cuda:7");
  EXPECT_DEATH(SetDefaultAllocator(Device::Cuda(0), CpuAllocator::Create("x")),
               "serves cpu, not cuda:0");
}

TEST(ExecContextTest, CpuContextDefaults) {
  ExecContext ctx = ExecContext::Cpu();
  EXPECT_EQ(ctx.device(), Device::Cpu());
  EXPECT_EQ(ctx.stream(), nullptr);
  EXPECT_EQ(ctx.num_threads(), 1);
  EXPECT_EQ(ctx.allocator(), DefaultAllocator(Device::Cpu()));
}

TEST(ExecContextTest, WithAllocatorKeepsThreadsAndSwapsAllocator) {
  ExecContext ctx = ExecContext::Cpu(3);
  auto stage = CpuAllocator::Create("stage0/activations");
  ExecContext staged = ctx.WithAllocator(stage);
  EXPECT_EQ(staged.allocator(), stage);
  EXPECT_EQ(staged.num_threads(), 3);
  EXPECT_EQ(ctx.allocator(), DefaultAllocator(Device::Cpu()));
}

TEST(ExecContextTest, ParallelForCoversTheRangeOnce) {
  for (int threads : {1, 2, 4}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    std::vector<int> hits(1000, 0);
    ctx.ParallelFor(1000, 10, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
    for (int h : hits) ASSERT_EQ(h, 1) << "threads=" << threads;
  }
}

TEST(ExecContextTest, ThreadsPerRankDividesCores) {
  EXPECT_GE(CpuThreadsPerRank(1), 1);
  EXPECT_EQ(CpuThreadsPerRank(100000), 1);
}

}  // namespace
}  // namespace trident
