// The registered CUDA backend: that linking it is all a binary needs, that a
// kernel's failure aborts naming the op, that per-stream state is made lazily
// and dropped with its stream, and (GPU) ops reached through the public
// functions on a CUDA context against the same ops on the CPU. The whole
// model on the GPU is checked in transformer/gpt_stage_gpu_test.cc.

#include "core/cuda/cuda_backend.h"

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
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
  ExpectClose(c_gpu.ToFloatVector(), c_cpu.ToVector<float>(), scale, 1e-5, "Matmul");

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

// ---- Every Backend method, through its public op, on both devices. ----
//
// Each case makes its tensors from the same host values on the CPU and on the
// GPU, runs the same public op(s) on each context and compares every tensor
// afterwards (inputs too: several ops work in place). This checks the
// forwarding (right kernel, right arguments in the right order, the context's
// stream); each kernel's accuracy is its own test's job (core/cuda/ops/*_test,
// cublaslt_gemm_test, attention_test). So the bound only has to tell "the
// same computation" from "other arguments": per element
// |gpu - cpu| <= 1e-4 * max(|cpu|, 1), fp32 throughout, NaN never passing.

enum class Init { kUniform, kPositive, kIds };

struct TensorSpec {
  Shape shape;
  Init init = Init::kUniform;
  int32_t max_id =
      0;  // kIds: uniform in [0, max_id); every fifth is -100 (ignored / out of range).
};

using OpRun = std::function<void(const ExecContext&, const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;
  std::vector<TensorSpec> tensors;
  OpRun run;
};

std::vector<OpCase> OpCases() {
  using ops::Trans;
  constexpr int64_t kR = 6, kC = 40, kN = 16, kRows = 10;
  const TensorSpec rc{{kR, kC}}, c{{kC}}, r_pos{{kR}, Init::kPositive}, r{{kR}};
  const TensorSpec ids{{kR}, Init::kIds, kRows}, targets{{kR}, Init::kIds, kC};
  ops::CrossEntropyOptions ce;
  ce.valid_columns = kC - 3;  // Padding columns excluded from the softmax.
  ce.vocab_size = kC - 3;
  const TensorSpec ce_targets{{kR}, Init::kIds, kC - 3};
  return {
      {"Fill", {rc}, [](auto& ctx, auto& t) { ops::Fill(ctx, t[0], 2.5f); }},
      {"Copy", {rc, rc}, [](auto& ctx, auto& t) { ops::Copy(ctx, t[0], t[1]); }},
      {"Add", {rc, rc, rc}, [](auto& ctx, auto& t) { ops::Add(ctx, t[0], t[1], t[2]); }},
      {"Axpy", {rc, rc}, [](auto& ctx, auto& t) { ops::Axpy(ctx, 0.5f, t[0], t[1]); }},
      {"Scale", {rc}, [](auto& ctx, auto& t) { ops::Scale(ctx, t[0], -3.0f); }},
      {"BroadcastRows", {c, rc}, [](auto& ctx, auto& t) { ops::BroadcastRows(ctx, t[0], t[1]); }},
      {"BiasAdd", {c, rc}, [](auto& ctx, auto& t) { ops::BiasAdd(ctx, t[0], t[1]); }},
      {"BiasGrad", {rc, c}, [](auto& ctx, auto& t) { ops::BiasGrad(ctx, t[0], t[1]); }},
      {"Gemm",
       {rc, {{kC, kN}}, {{kR, kN}}},
       [](auto& ctx, auto& t) {
         ops::Gemm(ctx, t[0], Trans::kNo, t[1], Trans::kNo, t[2], 0.5f, 1);
       }},
      {"BatchedGemm",
       {{{2, kR, kC}}, {{2, kN, kC}}, {{2, kR, kN}}},
       [](auto& ctx, auto& t) {
         ops::BatchedGemm(ctx, t[0], Trans::kNo, t[1], Trans::kYes, t[2], 1.0f, 0.0f);
       }},
      {"LinearForward",
       {rc, {{kC, kN}}, {{kN}}, {{kR, kN}}, {{kR, kN}}, {{kR, kN}}},
       [](auto& ctx, auto& t) {
         ops::LinearForward(ctx, t[0], t[1], t[2], ops::LinearEpilogue::kBias, t[3]);
         ops::LinearForward(ctx, t[0], t[1], t[2], ops::LinearEpilogue::kBiasGelu, t[4], t[5]);
       }},
      {"LinearWeightGrad",
       {rc, {{kR, kN}}, {{kC, kN}}, {{kN}}},
       [](auto& ctx, auto& t) { ops::LinearWeightGrad(ctx, t[0], t[1], t[2], t[3]); }},
      {"LayerNormForward",
       {rc, c, c, rc, r, r},
       [](auto& ctx, auto& t) {
         ops::LayerNormForward(ctx, t[0], t[1], t[2], 1e-5f, t[3], t[4], t[5]);
       }},
      {"LayerNormBackwardInput",
       {rc, c, r, r_pos, rc, rc},
       [](auto& ctx, auto& t) {
         ops::LayerNormBackwardInput(ctx, t[0], t[1], t[2], t[3], t[4], t[5]);
       }},
      {"AddLayerNormForward",
       {rc, rc, c, c, rc, rc, r, r},
       [](auto& ctx, auto& t) {
         ops::AddLayerNormForward(ctx, t[0], t[1], t[2], t[3], 1e-5f, t[4], t[5], t[6], t[7]);
       }},
      {"AddLayerNormBackwardInput",
       {rc, c, r, r_pos, rc, rc, rc},
       [](auto& ctx, auto& t) {
         ops::AddLayerNormBackwardInput(ctx, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
       }},
      {"LayerNormBackwardWeights",
       {rc, r, r_pos, rc, c, c},
       [](auto& ctx, auto& t) {
         ops::LayerNormBackwardWeights(ctx, t[0], t[1], t[2], t[3], t[4], t[5]);
       }},
      {"GeluForward", {rc, rc}, [](auto& ctx, auto& t) { ops::GeluForward(ctx, t[0], t[1]); }},
      {"GeluBackward",
       {rc, rc, rc},
       [](auto& ctx, auto& t) { ops::GeluBackward(ctx, t[0], t[1], t[2]); }},
      {"GatherRows",
       {ids, {{kRows, kC}}, rc},
       [](auto& ctx, auto& t) { ops::GatherRows(ctx, t[0], t[1], /*row_start=*/2, t[2]); }},
      {"ScatterAddRows",
       {ids, rc, {{kRows, kC}}},
       [](auto& ctx, auto& t) { ops::ScatterAddRows(ctx, t[0], t[1], /*row_start=*/2, t[2]); }},
      {"AddPositionEmbedding",
       {{{5, kC}}, {{2, 3, kC}}},
       [](auto& ctx, auto& t) { ops::AddPositionEmbedding(ctx, t[0], t[1]); }},
      {"PositionEmbeddingGrad",
       {{{2, 3, kC}}, {{5, kC}}},
       [](auto& ctx, auto& t) { ops::PositionEmbeddingGrad(ctx, t[0], t[1]); }},
      {"RowMax", {rc, r}, [ce](auto& ctx, auto& t) { ops::RowMax(ctx, t[0], ce, t[1]); }},
      {"RowSumExp",
       {rc, r, r},
       [ce](auto& ctx, auto& t) { ops::RowSumExp(ctx, t[0], t[1], ce, t[2]); }},
      {"TargetLogit",
       {rc, ce_targets, r},
       [ce](auto& ctx, auto& t) { ops::TargetLogit(ctx, t[0], t[1], ce, t[2]); }},
      {"CrossEntropyForward",
       {rc, ce_targets, r, r},
       [ce](auto& ctx, auto& t) { ops::CrossEntropyForward(ctx, t[0], t[1], ce, t[2], t[3]); }},
      {"CrossEntropyBackward",
       {rc, ce_targets, r, r, rc},
       [ce](auto& ctx, auto& t) {
         ops::CrossEntropyForward(ctx, t[0], t[1], ce, t[2], t[3]);
         ops::CrossEntropyBackward(ctx, t[0], t[1], t[3], 0.25f, ce, t[4]);
       }},
      {"CombineCrossEntropyParts",
       {r, r_pos, r, targets, r, r},
       [](auto& ctx, auto& t) {
         ops::CombineCrossEntropyParts(ctx, t[0], t[1], t[2], t[3], -100, t[4], t[5]);
       }},
      {"AdamWStep",
       {rc, rc, rc, {{kR, kC}, Init::kPositive}},
       [](auto& ctx, auto& t) {
         ops::AdamWOptions options;
         options.learning_rate = 1e-2;
         options.weight_decay = 0.1;
         options.step = 3;
         options.grad_scale = 0.5f;
         ops::AdamWStep(ctx, t[0], t[1], t[2], t[3], options, ops::WeightDecay::kApply);
       }},
      // B = 2, T = 8, 2 heads of 16: qkv [2, 8, 96], out [2, 8, 32], lse [2, 2, 8].
      {"AttentionForwardBackward",
       {{{2, 8, 96}}, {{2, 8, 32}}, {{2, 2, 8}}, {{2, 8, 32}}, {{2, 8, 96}}},
       [](auto& ctx, auto& t) {
         ops::AttentionForward(ctx, t[0], 2, t[1], t[2]);
         ops::AttentionBackward(ctx, t[0], t[1], t[2], t[3], 2, t[4]);
       }},
  };
}

std::vector<float> InitialValues(const TensorSpec& spec, int64_t n, std::mt19937& rng) {
  std::vector<float> v = RandomValues(rng, DType::kFloat32, n);
  if (spec.init == Init::kPositive) {
    for (float& x : v) x = 0.5f + std::abs(x);
  } else if (spec.init == Init::kIds) {
    std::uniform_int_distribution<int32_t> id(0, spec.max_id - 1);
    for (int64_t i = 0; i < n; ++i) v[i] = i % 5 == 4 ? -100.0f : static_cast<float>(id(rng));
  }
  return v;
}

Tensor MakeTensor(const TensorSpec& spec, const std::vector<float>& values,
                  const std::shared_ptr<Allocator>& allocator) {
  if (spec.init != Init::kIds) {
    const Tensor t = Tensor::Empty(spec.shape, DType::kFloat32, allocator);
    t.CopyFrom(values);
    return t;
  }
  std::vector<int32_t> ids(values.begin(), values.end());
  const Tensor t = Tensor::Empty(spec.shape, DType::kInt32, allocator);
  t.CopyFrom(ids);
  return t;
}

std::vector<float> Values(const Tensor& t) {
  if (t.dtype() != DType::kInt32) return t.ToVector<float>();
  const std::vector<int32_t> ids = t.ToVector<int32_t>();
  return std::vector<float>(ids.begin(), ids.end());
}

// The cases themselves, on the CPU alone (runs everywhere): every public op
// accepts its operands (a refused one would abort the GPU test's binary) and
// leaves only finite values.
TEST(CudaBackendTest, EveryOpCaseRunsOnTheCpu) {
  const ExecContext cpu = ExecContext::Cpu();
  std::mt19937 rng(11);
  for (const OpCase& op : OpCases()) {
    std::vector<Tensor> tensors;
    for (const TensorSpec& spec : op.tensors) {
      int64_t n = 1;
      for (int64_t d : spec.shape) n *= d;
      tensors.push_back(MakeTensor(spec, InitialValues(spec, n, rng), cpu.allocator()));
    }
    op.run(cpu, tensors);
    for (size_t i = 0; i < tensors.size(); ++i) {
      for (float v : Values(tensors[i])) {
        ASSERT_TRUE(std::isfinite(v)) << op.name << " tensor " << i;
      }
    }
  }
}

TEST(CudaBackendTest, EveryMethodThroughItsPublicOpMatchesTheCpu) {
  TRIDENT_SKIP_WITHOUT_GPU(unused_allocator);
  absl::StatusOr<CudaContext> context = MakeCudaContext(0, "backend_test");
  ASSERT_TRUE(context.ok()) << context.status();
  const ExecContext& gpu = context->exec();
  const ExecContext cpu = ExecContext::Cpu();
  std::mt19937 rng(11);
  for (const OpCase& op : OpCases()) {
    SCOPED_TRACE(op.name);
    std::vector<Tensor> on_cpu, on_gpu;
    for (const TensorSpec& spec : op.tensors) {
      int64_t n = 1;
      for (int64_t d : spec.shape) n *= d;
      const std::vector<float> values = InitialValues(spec, n, rng);
      on_cpu.push_back(MakeTensor(spec, values, cpu.allocator()));
      on_gpu.push_back(MakeTensor(spec, values, gpu.allocator()));
    }
    op.run(cpu, on_cpu);
    op.run(gpu, on_gpu);
    ASSERT_TRUE(context->Synchronize().ok());
    for (size_t i = 0; i < on_cpu.size(); ++i) {
      ExpectCloseRelative(Values(on_gpu[i]), Values(on_cpu[i]), 1e-4, 1.0f,
                          absl::StrCat(op.name, " tensor ", i));
    }
  }
  const ExecContext cpu_ctx = ExecContext::Cpu();
  std::vector<float> values = RandomValues(rng, DType::kFloat32, 1000);
  const Tensor host = Tensor::FromVector(values, {1000});
  const Tensor device = Upload(values, {1000}, DType::kFloat32, gpu.allocator());
  EXPECT_NEAR(ops::Sum(gpu, device), ops::Sum(cpu_ctx, host), 1e-9);
  EXPECT_NEAR(ops::SumOfSquares(gpu, device), ops::SumOfSquares(cpu_ctx, host), 1e-9);
}

}  // namespace
}  // namespace trident::cuda
