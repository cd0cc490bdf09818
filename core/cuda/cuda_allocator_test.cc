#include "core/cuda/cuda_allocator.h"

#include <cuda_runtime.h>

#include <vector>

#include "core/cuda/size_classes.h"
#include "core/tensor.h"
#include "core/cuda/gpu_test_util.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {


TEST(CudaCachingAllocatorTest, RejectsAMissingDevice) {
  auto allocator = CudaCachingAllocator::Create(1 << 20);
  EXPECT_FALSE(allocator.ok());
}

TEST(CudaCachingAllocatorTest, TensorsLiveOnTheGpuAndRoundTrip) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Tensor t = Tensor::Empty({3, 5}, DType::kFloat32, allocator);
  EXPECT_EQ(t.device(), Device::Cuda(0));
  cudaPointerAttributes attributes;
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, t.raw_data()), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  std::vector<float> values(15);
  for (int i = 0; i < 15; ++i) values[i] = 0.25f * i - 1.0f;
  t.CopyFrom(values);
  EXPECT_EQ(t.ToVector<float>(), values);
  const Tensor zeros = Tensor::Zeros({7}, DType::kFloat32, allocator);
  EXPECT_EQ(zeros.ToVector<float>(), std::vector<float>(7, 0.0f));
}

TEST(CudaCachingAllocatorTest, FreedBlocksAreReusedWithoutCudaMalloc) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  void* first = allocator->Allocate(1000);
  EXPECT_EQ(allocator->device_allocations(), 1);
  allocator->Free(first, 1000);
  EXPECT_EQ(allocator->cached_bytes(), static_cast<int64_t>(SizeClassOf(1000)));
  // 900 bytes fall in the same 1024-byte class: the cached block comes back.
  void* second = allocator->Allocate(900);
  EXPECT_EQ(second, first);
  EXPECT_EQ(allocator->device_allocations(), 1);
  EXPECT_EQ(allocator->cached_bytes(), 0);
  // Another class needs a new block.
  void* third = allocator->Allocate(5000);
  EXPECT_NE(third, first);
  EXPECT_EQ(allocator->device_allocations(), 2);
  allocator->Free(second, 900);
  allocator->Free(third, 5000);
  allocator->ReleaseCache();
  EXPECT_EQ(allocator->reserved_bytes(), 0);
}

TEST(CudaCachingAllocatorTest, CountsInUsePeakAndReserved) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const size_t small = 3000, large = (size_t{3} << 20) + 1;
  void* a = allocator->Allocate(small);
  void* b = allocator->Allocate(large);
  EXPECT_EQ(allocator->bytes_in_use(), static_cast<int64_t>(small + large));
  EXPECT_EQ(allocator->peak_bytes(), static_cast<int64_t>(small + large));
  EXPECT_EQ(allocator->reserved_bytes(),
            static_cast<int64_t>(SizeClassOf(small) + SizeClassOf(large)));
  allocator->Free(b, large);
  EXPECT_EQ(allocator->bytes_in_use(), static_cast<int64_t>(small));
  EXPECT_EQ(allocator->peak_bytes(), static_cast<int64_t>(small + large));
  // The freed block stays reserved (cached): fragmentation = reserved - in use.
  EXPECT_EQ(allocator->reserved_bytes() - allocator->bytes_in_use(),
            static_cast<int64_t>(SizeClassOf(small) - small + SizeClassOf(large)));
  allocator->ResetPeak();
  EXPECT_EQ(allocator->peak_bytes(), static_cast<int64_t>(small));
  allocator->Free(a, small);
  EXPECT_EQ(allocator->bytes_in_use(), 0);
  EXPECT_EQ(allocator->live_blocks(), 0);
}

TEST(CudaCachingAllocatorTest, ReleasesTheCacheWhenTheDeviceRunsOut) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  // Two blocks of ~60% of free memory cannot both be held: after the first is
  // freed (and cached), the second must succeed by releasing the cache.
  const size_t bytes = free_bytes / 10 * 6;
  void* first = allocator->Allocate(bytes);
  allocator->Free(first, bytes);
  void* second = allocator->Allocate(bytes + kLargeGranularity);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(allocator->reserved_bytes(),
            static_cast<int64_t>(SizeClassOf(bytes + kLargeGranularity)));
  allocator->Free(second, bytes + kLargeGranularity);
}

}  // namespace
}  // namespace trident::cuda
