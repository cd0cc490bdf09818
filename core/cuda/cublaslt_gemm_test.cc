// The cuBLASLt linear products against the CPU ops of core/ops/linear.h on
// fresh random inputs.
//
// Tolerances are relative to each element's magnitude scale, the sum of the
// absolute values of the terms it adds up (sum_k |x||w| + |b|), which bounds
// any ordering's rounding error, so the check is tight even where the result
// cancels to near zero: fp32 (TF32 off) 1e-5, TF32 2e-3, fp16 2e-3, bf16 1e-2.
// Low-precision inputs are rounded once on the host and both sides compute
// from the same rounded values. Outputs are poisoned with NaN before each run
// and NaN never passes (the comparison is written as !(error <= bound)).

#include "core/cuda/cublaslt_gemm.h"

#include <cuda_runtime.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/cuda_allocator.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/gemm.h"
#include "core/ops/linear.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::trident::ops::LinearEpilogue;

Tensor Host(const std::vector<float>& values, absl::Span<const int64_t> shape) {
  return Tensor::FromVector(values, shape);
}

struct Case {
  DType dtype;
  bool tf32;
  double tolerance;
  int64_t tokens, in, out;
  std::string Name() const {
    return absl::StrCat(DTypeName(dtype), tf32 ? "_tf32" : "", "_", tokens, "x", in, "x", out);
  }
};

class LtGemmVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(LtGemmVsCpuTest, ForwardAndWeightGradMatchTheCpuOps) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Case c = GetParam();
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  auto gemm = LtGemm::Create(allocator, {.allow_tf32 = c.tf32});
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  const ExecContext cpu = ExecContext::Cpu();
  const int64_t m = c.tokens, k = c.in, n = c.out;

  const std::vector<float> x = RandomValues(rng, c.dtype, m * k);
  const std::vector<float> w = RandomValues(rng, c.dtype, k * n);
  const std::vector<float> b = RandomValues(rng, c.dtype, n);
  const Tensor dx = Upload(x, {m, k}, c.dtype, allocator);
  const Tensor dw = Upload(w, {k, n}, c.dtype, allocator);
  const Tensor db = Upload(b, {n}, c.dtype, allocator);

  // The magnitude scale of y[t, o]: sum_i |x[t, i] w[i, o]| + |b[o]|.
  std::vector<float> forward_scale(m * n);
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t o = 0; o < n; ++o) {
      double s = std::abs(b[o]);
      for (int64_t i = 0; i < k; ++i) s += std::abs(x[t * k + i] * w[i * n + o]);
      forward_scale[t * n + o] = static_cast<float>(s);
    }
  }

  for (LinearEpilogue epilogue : {LinearEpilogue::kBias, LinearEpilogue::kBiasGelu}) {
    const bool gelu = epilogue == LinearEpilogue::kBiasGelu;
    const std::string name = gelu ? "bias_gelu" : "bias";
    const Tensor y = Poisoned({m, n}, c.dtype, allocator);
    const Tensor pre = Poisoned({m, n}, c.dtype, allocator);
    ASSERT_TRUE((*gemm)->LinearForward(nullptr, dx, dw, db, epilogue, y, pre).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const Tensor cpu_y = Tensor::Empty({m, n}, DType::kFloat32);
    const Tensor cpu_pre = Tensor::Empty({m, n}, DType::kFloat32);
    ops::LinearForward(cpu, Host(x, {m, k}), Host(w, {k, n}), Host(b, {n}), epilogue, cpu_y,
                       cpu_pre);
    // GELU's slope is at most 1.13: its output error is within 1.2x the input's.
    ExpectClose(y.ToFloatVector(), cpu_y.ToVector<float>(), forward_scale,
                c.tolerance * (gelu ? 1.2 : 1.0), name + " y");
    if (gelu) {
      ExpectClose(pre.ToFloatVector(), cpu_pre.ToVector<float>(), forward_scale, c.tolerance,
                  name + " pre");
    }
  }

  // Weight gradient, accumulated onto random existing gradients.
  const std::vector<float> dy = RandomValues(rng, c.dtype, m * n);
  const std::vector<float> dw0 = RandomValues(rng, c.dtype, k * n);
  const std::vector<float> db0 = RandomValues(rng, c.dtype, n);
  const Tensor grad_w = Upload(dw0, {k, n}, c.dtype, allocator);
  const Tensor grad_b = Upload(db0, {n}, c.dtype, allocator);
  ASSERT_TRUE(
      (*gemm)
          ->LinearWeightGrad(nullptr, dx, Upload(dy, {m, n}, c.dtype, allocator), grad_w, grad_b)
          .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_dw = Host(dw0, {k, n});
  const Tensor cpu_db = Host(db0, {n});
  ops::LinearWeightGrad(cpu, Host(x, {m, k}), Host(dy, {m, n}), cpu_dw, cpu_db);
  std::vector<float> dw_scale(k * n), db_scale(n);
  for (int64_t o = 0; o < n; ++o) {
    double s = std::abs(db0[o]);
    for (int64_t t = 0; t < m; ++t) s += std::abs(dy[t * n + o]);
    db_scale[o] = static_cast<float>(s);
    for (int64_t i = 0; i < k; ++i) {
      double sw = std::abs(dw0[i * n + o]);
      for (int64_t t = 0; t < m; ++t) sw += std::abs(x[t * k + i] * dy[t * n + o]);
      dw_scale[i * n + o] = static_cast<float>(sw);
    }
  }
  ExpectClose(grad_w.ToFloatVector(), cpu_dw.ToVector<float>(), dw_scale, c.tolerance, "dW");
  ExpectClose(grad_b.ToFloatVector(), cpu_db.ToVector<float>(), db_scale, c.tolerance, "db");
}

INSTANTIATE_TEST_SUITE_P(DTypesAndShapes, LtGemmVsCpuTest,
                         ::testing::Values(Case{DType::kFloat32, false, 1e-5, 64, 96, 128},
                                           Case{DType::kFloat32, false, 1e-5, 33, 40, 24},
                                           Case{DType::kFloat32, true, 2e-3, 64, 96, 128},
                                           Case{DType::kBFloat16, false, 1e-2, 64, 96, 128},
                                           Case{DType::kBFloat16, false, 1e-2, 33, 40, 24},
                                           Case{DType::kFloat16, false, 2e-3, 64, 96, 128}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.Name();
                         });

// ---- The general products of core/ops/gemm.h. ----
//
// Each case runs on views of bigger buffers (row strides wider than the
// matrices, batches inside one activation) and compares the WHOLE buffer of C
// with the CPU op on the same views of the same host values: the product
// inside the view, the untouched values outside it. The scale of each element
// is |alpha| |op(A)| |op(B)| + |beta| |C0|, computed by the CPU op on the
// absolute values (the terms' magnitude sum, as above).

// `values` with each element replaced by its absolute value.
std::vector<float> Abs(std::vector<float> values) {
  for (float& v : values) v = std::abs(v);
  return values;
}

// The view of a buffer a test case multiplies with: the buffer's shape, then
// how to take the operand out of a tensor of that shape.
struct OperandView {
  Shape buffer;
  std::function<Tensor(const Tensor&)> view;
};

struct GeneralCase {
  std::string name;
  bool batched;
  ops::Trans trans_a, trans_b;
  OperandView a, b, c;
  float alpha, beta;
};

void RunGeneralCase(const std::shared_ptr<CudaCachingAllocator>& allocator, LtGemm& gemm,
                    DType dtype, double tolerance, const GeneralCase& g, std::mt19937& rng) {
  SCOPED_TRACE(absl::StrCat(g.name, " ", DTypeName(dtype)));
  auto numel = [](const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
  };
  const std::vector<float> a = RandomValues(rng, dtype, numel(g.a.buffer));
  const std::vector<float> b = RandomValues(rng, dtype, numel(g.b.buffer));
  const std::vector<float> c0 = RandomValues(rng, dtype, numel(g.c.buffer));
  const Tensor da = Upload(a, g.a.buffer, dtype, allocator);
  const Tensor db = Upload(b, g.b.buffer, dtype, allocator);
  const Tensor dc = Upload(c0, g.c.buffer, dtype, allocator);
  ASSERT_TRUE(gemm.Gemm(nullptr, g.a.view(da), g.trans_a, g.b.view(db), g.trans_b, g.c.view(dc),
                        g.alpha, g.beta)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const ExecContext cpu = ExecContext::Cpu();
  auto cpu_run = [&](const std::vector<float>& ha, const std::vector<float>& hb,
                     const std::vector<float>& hc, float alpha, float beta) {
    const Tensor ta = Host(ha, g.a.buffer), tb = Host(hb, g.b.buffer), tc = Host(hc, g.c.buffer);
    if (g.batched) {
      ops::BatchedGemm(cpu, g.a.view(ta), g.trans_a, g.b.view(tb), g.trans_b, g.c.view(tc), alpha,
                       beta);
    } else {
      ops::Gemm(cpu, g.a.view(ta), g.trans_a, g.b.view(tb), g.trans_b, g.c.view(tc), alpha, beta);
    }
    return tc.ToVector<float>();
  };
  const std::vector<float> expected = cpu_run(a, b, c0, g.alpha, g.beta);
  const std::vector<float> scale =
      cpu_run(Abs(a), Abs(b), Abs(c0), std::abs(g.alpha), std::abs(g.beta));
  ExpectClose(dc.ToFloatVector(), expected, scale, tolerance, g.name);
}

std::vector<GeneralCase> GeneralCases() {
  using ops::Trans;
  // 2-D: op(A) [37, 70], op(B) [70, 45], C a column window [37, 45] of a
  // [37, 64] buffer (row stride 64); A and B stored with padded rows too.
  auto window = [](int64_t cols) {
    return [cols](const Tensor& t) { return t.Slice(1, 8, cols); };
  };
  std::vector<GeneralCase> cases;
  for (const Trans ta : {Trans::kNo, Trans::kYes}) {
    for (const Trans tb : {Trans::kNo, Trans::kYes}) {
      const bool ya = ta == Trans::kYes, yb = tb == Trans::kYes;
      cases.push_back({.name = absl::StrCat("gemm_", ya ? "T" : "N", yb ? "T" : "N"),
                       .batched = false,
                       .trans_a = ta,
                       .trans_b = tb,
                       .a = {ya ? Shape{70, 56} : Shape{37, 88}, window(ya ? 37 : 70)},
                       .b = {yb ? Shape{45, 88} : Shape{70, 64}, window(yb ? 70 : 45)},
                       .c = {Shape{37, 64}, window(45)},
                       .alpha = 0.75f,
                       .beta = 0.5f});
    }
  }
  // A single row whose row stride means nothing (a transposed column: strides
  // [1, 1]), times a window: read with ld = its width, as the CPU op does.
  cases.push_back({.name = "gemm_single_row",
                   .batched = false,
                   .trans_a = Trans::kNo,
                   .trans_b = Trans::kNo,
                   .a = {Shape{70, 1}, [](const Tensor& t) { return t.Transpose(0, 1); }},
                   .b = {Shape{70, 64}, window(45)},
                   .c = {Shape{1, 64}, window(45)},
                   .alpha = 1.0f,
                   .beta = 0.0f});
  // Batched attention products over the heads of a fused QKV activation:
  // qkv [T, 3, H, D] viewed per head [H, T, D] (batch stride D, row stride
  // 3 H D). Scores = Q K^T into [H, T, T]; context = P V into [T, H, D] viewed
  // [H, T, D] (batch stride D, row stride H D), beta = 0 over NaN-free values.
  constexpr int64_t kT = 48, kH = 4, kD = 16;
  auto head_part = [](int part) {
    return [part](const Tensor& qkv) { return qkv.Select(1, part).Transpose(0, 1); };
  };
  cases.push_back({.name = "batched_scores_NT",
                   .batched = true,
                   .trans_a = Trans::kNo,
                   .trans_b = Trans::kYes,
                   .a = {Shape{kT, 3, kH, kD}, head_part(0)},
                   .b = {Shape{kT, 3, kH, kD}, head_part(1)},
                   .c = {Shape{kH, kT, kT}, [](const Tensor& t) { return t; }},
                   .alpha = 0.25f,
                   .beta = 0.0f});
  cases.push_back({.name = "batched_context_NN",
                   .batched = true,
                   .trans_a = Trans::kNo,
                   .trans_b = Trans::kNo,
                   .a = {Shape{kH, kT, kT}, [](const Tensor& t) { return t; }},
                   .b = {Shape{kT, 3, kH, kD}, head_part(2)},
                   .c = {Shape{kT, kH, kD}, [](const Tensor& t) { return t.Transpose(0, 1); }},
                   .alpha = 1.0f,
                   .beta = 1.0f});
  cases.push_back({.name = "batched_dq_NN_TN",
                   .batched = true,
                   .trans_a = Trans::kYes,
                   .trans_b = Trans::kNo,
                   .a = {Shape{kH, kT, kT}, [](const Tensor& t) { return t; }},
                   .b = {Shape{kT, 3, kH, kD}, head_part(1)},
                   .c = {Shape{kT, 3, kH, kD}, head_part(0)},
                   .alpha = -0.5f,
                   .beta = 0.25f});
  return cases;
}

// The cases' views on the CPU alone (runs everywhere): the CPU op accepts
// every one (a refused view would abort the GPU test's binary).
TEST(LtGemmGeneralCasesTest, RunOnTheCpu) {
  const ExecContext cpu = ExecContext::Cpu();
  for (const GeneralCase& g : GeneralCases()) {
    SCOPED_TRACE(g.name);
    const Tensor a = Tensor::Zeros(g.a.buffer, DType::kFloat32);
    const Tensor b = Tensor::Zeros(g.b.buffer, DType::kFloat32);
    const Tensor c = Tensor::Zeros(g.c.buffer, DType::kFloat32);
    if (g.batched) {
      ops::BatchedGemm(cpu, g.a.view(a), g.trans_a, g.b.view(b), g.trans_b, g.c.view(c), g.alpha,
                       g.beta);
    } else {
      ops::Gemm(cpu, g.a.view(a), g.trans_a, g.b.view(b), g.trans_b, g.c.view(c), g.alpha, g.beta);
    }
  }
}

class LtGemmGeneralVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(LtGemmGeneralVsCpuTest, GemmAndBatchedGemmMatchTheCpuOpsOnViews) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  const Case c = GetParam();
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  auto gemm = LtGemm::Create(allocator, {.allow_tf32 = c.tf32});
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  for (const GeneralCase& g : GeneralCases()) {
    RunGeneralCase(allocator, **gemm, c.dtype, c.tolerance, g, rng);
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, LtGemmGeneralVsCpuTest,
                         ::testing::Values(Case{DType::kFloat32, false, 1e-5, 0, 0, 0},
                                           Case{DType::kBFloat16, false, 1e-2, 0, 0, 0},
                                           Case{DType::kFloat16, false, 2e-3, 0, 0, 0}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(DTypeName(info.param.dtype));
                         });

TEST(LtGemmTest, GemmRefusesOperandsCublasLtCannotTakeByName) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  auto gemm = LtGemm::Create(allocator);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  const Tensor a = Tensor::Zeros({8, 16}, DType::kFloat32, allocator);
  const Tensor b = Tensor::Zeros({16, 4}, DType::kFloat32, allocator);
  const Tensor c = Tensor::Empty({8, 4}, DType::kFloat32, allocator);
  using ops::Trans;
  const absl::Status shape = (*gemm)->Gemm(nullptr, a, Trans::kYes, b, Trans::kNo, c, 1, 0);
  EXPECT_NE(shape.message().find("a has shape [8, 16], expected [16, 8]"), std::string::npos)
      << shape;
  const absl::Status column = (*gemm)->Gemm(
      nullptr, a.Transpose(0, 1).Transpose(0, 1), Trans::kNo,
      Tensor::Zeros({4, 16}, DType::kFloat32, allocator).Transpose(0, 1), Trans::kNo, c, 1, 0);
  EXPECT_NE(column.message().find("b has strides [1, 16]: needs unit column stride"),
            std::string::npos)
      << column;
  const absl::Status mixed =
      (*gemm)->Gemm(nullptr, a, Trans::kNo, Tensor::Zeros({16, 4}, DType::kBFloat16, allocator),
                    Trans::kNo, c, 1, 0);
  EXPECT_NE(mixed.message().find("b is bf16"), std::string::npos) << mixed;
}

TEST(LtGemmTest, ChoosesOneAlgorithmPerShapeAndEpilogue) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  auto gemm = LtGemm::Create(allocator);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  const Tensor x = Tensor::Zeros({16, 32}, DType::kFloat32, allocator);
  const Tensor w = Tensor::Zeros({32, 64}, DType::kFloat32, allocator);
  const Tensor b = Tensor::Zeros({64}, DType::kFloat32, allocator);
  const Tensor y = Tensor::Empty({16, 64}, DType::kFloat32, allocator);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*gemm)->LinearForward(nullptr, x, w, b, LinearEpilogue::kBias, y).ok());
  }
  EXPECT_EQ((*gemm)->cached_plans(), 1);
  const Tensor pre = Tensor::Empty({16, 64}, DType::kFloat32, allocator);
  ASSERT_TRUE((*gemm)->LinearForward(nullptr, x, w, b, LinearEpilogue::kBiasGelu, y, pre).ok());
  EXPECT_EQ((*gemm)->cached_plans(), 2);
}

TEST(LtGemmTest, RejectsMismatchedOperandsByName) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  auto gemm = LtGemm::Create(allocator);
  ASSERT_TRUE(gemm.ok()) << gemm.status();
  const Tensor x = Tensor::Zeros({16, 32}, DType::kFloat32, allocator);
  const Tensor w = Tensor::Zeros({32, 64}, DType::kFloat32, allocator);
  const Tensor b_bf16 = Tensor::Zeros({64}, DType::kBFloat16, allocator);
  const Tensor y = Tensor::Empty({16, 64}, DType::kFloat32, allocator);
  const absl::Status dtype =
      (*gemm)->LinearForward(nullptr, x, w, b_bf16, LinearEpilogue::kBias, y);
  EXPECT_EQ(dtype.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dtype.message().find("bias has dtype bf16"), std::string::npos) << dtype;
  const Tensor y_wrong = Tensor::Empty({16, 63}, DType::kFloat32, allocator);
  const Tensor b = Tensor::Zeros({64}, DType::kFloat32, allocator);
  const absl::Status shape =
      (*gemm)->LinearForward(nullptr, x, w, b, LinearEpilogue::kBias, y_wrong);
  EXPECT_NE(shape.message().find("y has shape [16, 63], expected [16, 64]"), std::string::npos)
      << shape;
  const absl::Status host = (*gemm)->LinearForward(
      nullptr, Tensor::Zeros({16, 32}, DType::kFloat32), w, b, LinearEpilogue::kBias, y);
  EXPECT_NE(host.message().find("x is on cpu"), std::string::npos) << host;
  const absl::Status no_pre =
      (*gemm)->LinearForward(nullptr, x, w, b, LinearEpilogue::kBiasGelu, y);
  EXPECT_NE(no_pre.message().find("pre is undefined"), std::string::npos) << no_pre;
  // The GELU aux leading dimension is the output width, which cuBLASLt wants
  // divisible by 8.
  const Tensor w_odd = Tensor::Zeros({32, 60}, DType::kFloat32, allocator);
  const Tensor b_odd = Tensor::Zeros({60}, DType::kFloat32, allocator);
  const Tensor y_odd = Tensor::Empty({16, 60}, DType::kFloat32, allocator);
  const Tensor pre_odd = Tensor::Empty({16, 60}, DType::kFloat32, allocator);
  const absl::Status odd =
      (*gemm)->LinearForward(nullptr, x, w_odd, b_odd, LinearEpilogue::kBiasGelu, y_odd, pre_odd);
  EXPECT_NE(odd.message().find("out features (weight dim 1) is 60: must be a multiple of 8"),
            std::string::npos)
      << odd;
  const Tensor x_int = Tensor::Zeros({16, 32}, DType::kInt32, allocator);
  const absl::Status integer =
      (*gemm)->LinearForward(nullptr, x_int, w, b, LinearEpilogue::kBias, y);
  EXPECT_NE(integer.message().find("dtype int32 is not fp32, bf16 or fp16"), std::string::npos)
      << integer;
}

TEST(LtGemmTest, NeedsACudaAllocator) {
  auto gemm = LtGemm::Create(CpuAllocator::Create());
  EXPECT_EQ(gemm.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace trident::cuda
