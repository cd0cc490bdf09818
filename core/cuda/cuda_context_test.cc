#include "core/cuda/cuda_context.h"

#include <cuda_runtime.h>

#include <utility>

#include "core/cuda/gpu_test_util.h"
#include "core/cuda/host_sync.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(MakeCudaContextTest, RefusesADeviceIndexThisMachineDoesNotHave) {
  const absl::StatusOr<CudaContext> context = MakeCudaContext(-1);
  ASSERT_FALSE(context.ok());
  // Without a driver the device count itself fails: UNAVAILABLE; with GPUs the
  // index is out of range: INVALID_ARGUMENT naming it.
  int count = 0;
  if (cudaGetDeviceCount(&count) == cudaSuccess) {
    EXPECT_EQ(context.status().code(), absl::StatusCode::kInvalidArgument) << context.status();
    EXPECT_NE(context.status().message().find("CUDA device -1 does not exist"), std::string::npos)
        << context.status();
  } else {
    EXPECT_EQ(context.status().code(), absl::StatusCode::kUnavailable) << context.status();
  }
}

TEST(MakeCudaContextTest, GivesAStreamOnTheDeviceWithItsAllocator) {
  TRIDENT_SKIP_WITHOUT_GPU(unused_allocator);
  absl::StatusOr<CudaContext> made = MakeCudaContext(0, "context_test");
  ASSERT_TRUE(made.ok()) << made.status();
  CudaContext context = *std::move(made);
  EXPECT_EQ(context.exec().device(), Device::Cuda(0));
  EXPECT_NE(context.exec().stream(), nullptr);
  EXPECT_EQ(context.exec().allocator(), context.allocator());
  EXPECT_EQ(context.allocator()->name(), "context_test");

  const int64_t syncs = HostSyncCount();
  ASSERT_TRUE(context.Synchronize().ok());
  EXPECT_EQ(HostSyncCount(), syncs + 1);

  // A moved-to context owns the stream; the moved-from one destroys nothing.
  void* stream = context.exec().stream();
  CudaContext moved = std::move(context);
  EXPECT_EQ(moved.exec().stream(), stream);
  EXPECT_TRUE(moved.Synchronize().ok());
}

}  // namespace
}  // namespace trident::cuda
