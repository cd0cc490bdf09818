// The registered CUDA backend: that linking it is all a binary needs, that a
// kernel's failure aborts naming the op, that per-stream state is made lazily
// and dropped with its stream, and (GPU) ops reached through the public
// functions on a CUDA context against the same ops on the CPU. The whole
// model on the GPU is checked in transformer/gpt_stage_gpu_test.cc.

#include "core/cuda/cuda_backend.h"

#include <cmath>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_context.h"
#include "core/cuda/gpu_test_util.h"
#include "core/cuda/host_sync.h"
#include "core/exec_context.h"
#include "core/ops/dispatch.h"
#include "core/ops/ops.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

// An allocator that claims GPU 0 and hands out nothing, so a CUDA context can
// be made on a machine without one (to check registration and failures only).
class NoMemoryCudaAllocator final : public Allocator {
 public:
  NoMemoryCudaAllocator() : Allocator("no-memory") {}
  Device device() const override { return Device::Cuda(0); }
  void CopyFromHost(void*, const void*, size_t) const override {}
  void CopyToHost(void*, const void*, size_t) const override {}
  void SetZero(void*, size_t) const override {}

 protected:
  void* RawAllocate(size_t) override { return nullptr; }
  void RawFree(void*, size_t) override {}
};

ExecContext CudaContextWithoutMemory() {
  return ExecContext(Device::Cuda(0), nullptr, 1, std::make_shared<NoMemoryCudaAllocator>());
}

TEST(CudaBackendTest, LinkingTheTargetRegistersItForCuda) {
  const ExecContext cuda = CudaContextWithoutMemory();
  EXPECT_EQ(ops::BackendFor(cuda).name(), "cuda");
  EXPECT_EQ(&ops::BackendFor(cuda), &RegisteredCudaBackend());
  EXPECT_EQ(ops::BackendFor(ExecContext::Cpu()).name(), "cpu");
}

TEST(CudaBackendDeathTest, AKernelFailureAbortsNamingTheOp) {
  // Called directly (the public op would have refused the host tensor): on a
  // GPU machine the kernel refuses the operand, on one without a driver the
  // device cannot be selected; either way the op is named.
  const ExecContext cuda = CudaContextWithoutMemory();
  const Tensor host = Tensor::Zeros({4}, DType::kFloat32);
  EXPECT_DEATH(RegisteredCudaBackend().Fill(cuda, host, 1.0f), "ops::Fill on CUDA");
  EXPECT_DEATH(RegisteredCudaBackend().Sum(cuda, host), "ops::Sum on CUDA");
}

TEST(CudaBackendTest, StreamStateIsMadeOnFirstUseAndDroppedWithTheStream) {
  TRIDENT_SKIP_WITHOUT_GPU(unused_allocator);
  const int64_t before = RegisteredCudaBackend().streams_with_state();
  {
    absl::StatusOr<CudaContext> context = MakeCudaContext(0, "backend_test");
    ASSERT_TRUE(context.ok()) << context.status();
    const ExecContext& ctx = context->exec();
    const Tensor a = Tensor::Zeros({8, 16}, DType::kFloat32, ctx.allocator());
    const Tensor b = Tensor::Zeros({16, 8}, DType::kFloat32, ctx.allocator());
    ops::Fill(ctx, a, 1.0f);  // An elementwise kernel needs no state.
    EXPECT_EQ(RegisteredCudaBackend().streams_with_state(), before);
    ops::Matmul(ctx, a, ops::Trans::kNo, b, ops::Trans::kNo);
    EXPECT_EQ(RegisteredCudaBackend().streams_with_state(), before + 1);
    ASSERT_TRUE(context->Synchronize().ok());
  }
  EXPECT_EQ(RegisteredCudaBackend().streams_with_state(), before);
}

// Public ops on a CUDA context and on the CPU, from the same values: fp32
// products to 1e-5 of their magnitude sums, reductions to 1e-6 relative (fp64
// accumulation on both sides), and the host syncs each returns a number with.
TEST(CudaBackendTest, PublicOpsOnACudaContextMatchTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(unused_allocator);
  absl::StatusOr<CudaContext> context = MakeCudaContext(0, "backend_test");
  ASSERT_TRUE(context.ok()) << context.status();
  const ExecContext& gpu = context->exec();
  const ExecContext cpu = ExecContext::Cpu();
  std::mt19937 rng(7);
  constexpr int64_t kM = 24, kK = 40, kN = 32;
  const std::vector<float> a = RandomValues(rng, DType::kFloat32, kM * kK);
  const std::vector<float> b = RandomValues(rng, DType::kFloat32, kK * kN);

  const Tensor c_gpu =
      ops::Matmul(gpu, Upload(a, {kM, kK}, DType::kFloat32, gpu.allocator()), ops::Trans::kNo,
                  Upload(b, {kK, kN}, DType::kFloat32, gpu.allocator()), ops::Trans::kNo);
  const Tensor c_cpu = ops::Matmul(cpu, Tensor::FromVector(a, {kM, kK}), ops::Trans::kNo,
                                   Tensor::FromVector(b, {kK, kN}), ops::Trans::kNo);
  ASSERT_TRUE(context->Synchronize().ok());
  std::vector<float> scale(kM * kN);
  for (int64_t i = 0; i < kM; ++i) {
    for (int64_t j = 0; j < kN; ++j) {
      double s = 0;
      for (int64_t p = 0; p < kK; ++p) s += std::abs(a[i * kK + p] * b[p * kN + j]);
      scale[i * kN + j] = static_cast<float>(s);
    }
  }
  ExpectClose(Download(c_gpu), c_cpu.ToVector<float>(), scale, 1e-5, "Matmul");

  const Tensor x = Upload(a, {kM, kK}, DType::kFloat32, gpu.allocator());
  const int64_t syncs = HostSyncCount();
  const double sum = ops::Sum(gpu, x);
  const double squares = ops::SumOfSquares(gpu, x);
  EXPECT_EQ(HostSyncCount(), syncs + 2) << "one read-back per reduction";
  const Tensor host_x = Tensor::FromVector(a, {kM, kK});
  EXPECT_NEAR(sum, ops::Sum(cpu, host_x), 1e-6 * kM * kK);
  EXPECT_NEAR(squares, ops::SumOfSquares(cpu, host_x), 1e-6 * ops::SumOfSquares(cpu, host_x));

  const std::vector<int32_t> targets = {3, -100, 7, 0, -100, 5};
  const Tensor gpu_targets = Tensor::Empty({6}, DType::kInt32, gpu.allocator());
  gpu_targets.CopyFrom(targets);
  const int64_t before_count = HostSyncCount();
  EXPECT_EQ(ops::CountTargets(gpu, gpu_targets, -100), 4);
  EXPECT_EQ(HostSyncCount(), before_count + 1);
}

}  // namespace
}  // namespace trident::cuda
