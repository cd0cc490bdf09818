// The elementwise CUDA ops against their CPU twins (core/ops/elementwise.h) on
// fresh random inputs, for fp32, bf16 and fp16 storage and odd sizes.
//
// Inputs are rounded to the storage dtype on the host, so both sides compute
// from the same values; the CPU result (fp32) is rounded to the output's dtype
// before comparing. Tolerances are relative to each element's magnitude scale,
// the sum of the absolute values of the terms it adds (|a| + |b| for Add,
// |y| + |alpha x| for Axpy, |dbias| + sum |dy| for BiasGrad), which bounds any
// summation order's rounding error even where the result cancels: fp32 1e-5,
// bf16 and fp16 1e-2 (one 16-bit rounding of the output is 2^-9 or 2^-12 of
// it). Copies and fills are exact. Outputs are poisoned with NaN first, and
// NaN never passes.
//
// The refusal tests use CPU tensors: the structure checks run before anything
// touches a device, so they run (and must pass) on machines without a GPU.

#include "core/cuda/ops/elementwise.h"

#include <cuda_runtime.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

Tensor Host(const std::vector<float>& values, absl::Span<const int64_t> shape) {
  return Tensor::FromVector(values, shape);
}

std::vector<float> RoundedAll(DType dtype, std::vector<float> values) {
  for (float& v : values) v = RoundedTo(dtype, v);
  return values;
}

double ToleranceFor(DType dtype) { return dtype == DType::kFloat32 ? 1e-5 : 1e-2; }

void Sync() { ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess); }

void ExpectMessage(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(text), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << text;
}

// ---------------------------------------------------------------------------
// Refusals (no GPU needed).

TEST(ElementwiseRefusalTest, NamesTheOpTheArgumentAndTheRule) {
  const Tensor a = Tensor::Zeros({4}, DType::kFloat32);
  const Tensor b3 = Tensor::Zeros({3}, DType::kFloat32);
  ExpectMessage(Add(nullptr, a, b3, a), "Add: b has shape [3], expected [4] (the shape of a)");
  ExpectMessage(Add(nullptr, a, Tensor::Zeros({4}, DType::kBFloat16), a),
                "Add: b has dtype bf16, expected fp32 (the dtype of a)");
  ExpectMessage(Fill(nullptr, Tensor::Zeros({4}, DType::kInt32), 1.0f),
                "Fill: x has dtype int32, expected fp32, bf16 or fp16");
  ExpectMessage(Scale(nullptr, Tensor(), 2.0f), "Scale: x is undefined");
  ExpectMessage(Axpy(nullptr, 1.0f, a, b3), "Axpy: y has shape [3], expected [4]");
  const Tensor x = Tensor::Zeros({3, 4}, DType::kFloat32);
  ExpectMessage(BiasAdd(nullptr, Tensor::Zeros({5}, DType::kFloat32), x),
                "BiasAdd: x has shape [3, 4]: its last dim must be 5 (the length of bias)");
  ExpectMessage(BroadcastRows(nullptr, x, x),
                "BroadcastRows: row has shape [3, 4], expected one dim");
  ExpectMessage(BiasGrad(nullptr, x.Transpose(0, 1), Tensor::Zeros({3}, DType::kFloat32)),
                "BiasGrad: dy must be contiguous");
  // A conversion needs contiguous tensors; a same-dtype copy takes any strides.
  ExpectMessage(Copy(nullptr, x.Transpose(0, 1), Tensor::Zeros({4, 3}, DType::kBFloat16)),
                "Copy: src must be contiguous");
  ExpectMessage(Copy(nullptr, x, Tensor::Zeros({4, 3}, DType::kFloat32)),
                "Copy: dst has shape [4, 3], expected [3, 4] (the shape of src)");
}

TEST(ElementwiseRefusalTest, RefusesHostTensorsAfterTheStructureChecks) {
  const Tensor a = Tensor::Zeros({4}, DType::kFloat32);
  ExpectMessage(Add(nullptr, a, a, a), "Add: a is on cpu, expected a CUDA device");
  ExpectMessage(Copy(nullptr, a, Tensor::Zeros({4}, DType::kFloat16)),
                "Copy: src is on cpu, expected a CUDA device");
  ExpectMessage(BiasGrad(nullptr, Tensor::Zeros({2, 4}, DType::kFloat32), a),
                "BiasGrad: dy is on cpu, expected a CUDA device");
}

// ---------------------------------------------------------------------------
// Against the CPU ops, per storage dtype.

class ElementwiseVsCpuTest : public StorageDTypeTest {};

// Element counts: one element, odd sizes (not multiples of the pack of 8 or a
// warp), a GPT-2 small activation row block.
constexpr int64_t kCounts[] = {1, 7, 33, 1000, 100003};

TEST_P(ElementwiseVsCpuTest, FillAndScale) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  for (int64_t n : kCounts) {
    const Tensor x = Poisoned({n}, dtype, allocator);
    ASSERT_TRUE(Fill(nullptr, x, 0.3f).ok());
    Sync();
    ExpectClose(x.ToFloatVector(), std::vector<float>(n, RoundedTo(dtype, 0.3f)),
                std::vector<float>(n, 1.0f), 0.0, absl::StrCat("Fill n=", n));

    const std::vector<float> v = RandomValues(rng_, dtype, n);
    const Tensor y = Upload(v, {n}, dtype, allocator);
    ASSERT_TRUE(Scale(nullptr, y, -1.7f).ok());
    Sync();
    const Tensor expected = Host(v, {n});
    ops::Scale(cpu_, expected, -1.7f);
    ExpectCloseRelative(y.ToFloatVector(), RoundedAll(dtype, expected.ToVector<float>()),
                        ToleranceFor(dtype), 1e-30f, absl::StrCat("Scale n=", n));
  }
}

TEST_P(ElementwiseVsCpuTest, AddAndAxpy) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  for (int64_t n : kCounts) {
    const std::vector<float> a = RandomValues(rng_, dtype, n);
    const std::vector<float> b = RandomValues(rng_, dtype, n);
    std::vector<float> scale(n);
    for (int64_t i = 0; i < n; ++i) scale[i] = std::abs(a[i]) + std::abs(b[i]);
    const Tensor cpu_out = Tensor::Empty({n}, DType::kFloat32);
    ops::Add(cpu_, Host(a, {n}), Host(b, {n}), cpu_out);
    const std::vector<float> expected = RoundedAll(dtype, cpu_out.ToVector<float>());

    const Tensor ga = Upload(a, {n}, dtype, allocator);
    const Tensor gb = Upload(b, {n}, dtype, allocator);
    const Tensor out = Poisoned({n}, dtype, allocator);
    ASSERT_TRUE(Add(nullptr, ga, gb, out).ok());
    Sync();
    ExpectClose(out.ToFloatVector(), expected, scale, ToleranceFor(dtype),
                absl::StrCat("Add n=", n));
    // In place: out is a.
    ASSERT_TRUE(Add(nullptr, ga, gb, ga).ok());
    Sync();
    ExpectClose(ga.ToFloatVector(), expected, scale, ToleranceFor(dtype),
                absl::StrCat("Add in place n=", n));

    // y += alpha x, with x of this dtype into an fp32 y and into a y of this dtype.
    const float alpha = 0.37f;
    for (DType y_dtype : {dtype, DType::kFloat32}) {
      const Tensor gy = Upload(b, {n}, y_dtype, allocator);
      ASSERT_TRUE(Axpy(nullptr, alpha, Upload(a, {n}, dtype, allocator), gy).ok());
      Sync();
      const Tensor cpu_y = Host(b, {n});
      ops::Axpy(cpu_, alpha, Host(a, {n}), cpu_y);
      std::vector<float> axpy_scale(n);
      for (int64_t i = 0; i < n; ++i) axpy_scale[i] = std::abs(b[i]) + std::abs(alpha * a[i]);
      ExpectClose(gy.ToFloatVector(), RoundedAll(y_dtype, cpu_y.ToVector<float>()), axpy_scale,
                  ToleranceFor(y_dtype), absl::StrCat("Axpy into ", DTypeName(y_dtype), " n=", n));
    }
  }
}

TEST_P(ElementwiseVsCpuTest, CopyConvertsToEveryFloatDType) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  for (int64_t n : kCounts) {
    const std::vector<float> v = RandomValues(rng_, dtype, n, -100.0f, 100.0f);
    for (DType to : {DType::kFloat32, DType::kBFloat16, DType::kFloat16}) {
      const Tensor dst = Poisoned({n}, to, allocator);
      ASSERT_TRUE(Copy(nullptr, Upload(v, {n}, dtype, allocator), dst).ok());
      Sync();
      // Conversion rounds once to nearest even: exactly what the host does.
      ExpectClose(dst.ToFloatVector(), RoundedAll(to, v), std::vector<float>(n, 1.0f), 0.0,
                  absl::StrCat("Copy to ", DTypeName(to), " n=", n));
    }
    if (n < 2) continue;
    // Views starting one element in are not pack-aligned: the scalar path.
    const Tensor src = Upload(v, {n}, dtype, allocator);
    const Tensor dst = Poisoned({n}, DType::kFloat32, allocator);
    ASSERT_TRUE(Copy(nullptr, src.Flat(1, n - 1), dst.Flat(1, n - 1)).ok());
    Sync();
    const std::vector<float> got = dst.ToFloatVector();
    EXPECT_TRUE(std::isnan(got[0])) << "Copy wrote outside its view";
    ExpectClose(std::vector<float>(got.begin() + 1, got.end()),
                std::vector<float>(v.begin() + 1, v.end()), std::vector<float>(n - 1, 1.0f), 0.0,
                absl::StrCat("unaligned Copy n=", n));
  }
}

TEST_P(ElementwiseVsCpuTest, CopyBetweenAnyStrides) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  // [2, 5, 7]: its transpose (1, 2) into a contiguous [2, 7, 5], and back into
  // a strided view of a poisoned [2, 5, 7].
  const std::vector<float> v = RandomValues(rng_, dtype, 2 * 5 * 7);
  const Tensor src = Upload(v, {2, 5, 7}, dtype, allocator);
  const Tensor transposed = Poisoned({2, 7, 5}, dtype, allocator);
  ASSERT_TRUE(Copy(nullptr, src.Transpose(1, 2), transposed).ok());
  const Tensor back = Poisoned({2, 5, 7}, dtype, allocator);
  ASSERT_TRUE(Copy(nullptr, transposed, back.Transpose(1, 2)).ok());
  Sync();
  const Tensor cpu_transposed = Tensor::Empty({2, 7, 5}, DType::kFloat32);
  ops::Copy(cpu_, Host(v, {2, 5, 7}).Transpose(1, 2), cpu_transposed);
  const std::vector<float> ones(v.size(), 1.0f);
  ExpectClose(transposed.ToFloatVector(), cpu_transposed.ToVector<float>(), ones, 0.0,
              "transposed");
  ExpectClose(back.ToFloatVector(), v, ones, 0.0, "round trip");
}

// A same-dtype copy moves bits: integer ids (4 bytes) and int64 (8 bytes)
// through a transposed view.
TEST(ElementwiseTest, CopyMovesIntegersBetweenAnyStrides) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  std::vector<int32_t> ids(3 * 5);
  std::vector<int64_t> wide(3 * 5);
  for (int i = 0; i < 15; ++i) {
    ids[i] = 1000 * i - 7;
    wide[i] = (int64_t{1} << 40) + i;
  }
  const Tensor src32 = Tensor::Empty({3, 5}, DType::kInt32, allocator);
  src32.CopyFrom(ids);
  const Tensor dst32 = Tensor::Zeros({5, 3}, DType::kInt32, allocator);
  ASSERT_TRUE(Copy(nullptr, src32.Transpose(0, 1), dst32).ok());
  const Tensor src64 = Tensor::Empty({3, 5}, DType::kInt64, allocator);
  src64.CopyFrom(wide);
  const Tensor dst64 = Tensor::Zeros({5, 3}, DType::kInt64, allocator);
  ASSERT_TRUE(Copy(nullptr, src64.Transpose(0, 1), dst64).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<int32_t> got32 = dst32.ToVector<int32_t>();
  const std::vector<int64_t> got64 = dst64.ToVector<int64_t>();
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(got32[r * 3 + c], ids[c * 5 + r]) << "int32 [" << r << ", " << c << "]";
      EXPECT_EQ(got64[r * 3 + c], wide[c * 5 + r]) << "int64 [" << r << ", " << c << "]";
    }
  }
}

// [rows, cols] of bias-shaped ops: one element, odd sizes, GPT-2 small widths;
// for BiasGrad's row groups (>= 256 rows, at most 32 groups): one group, a
// second group of one row, four groups, and 32 groups of 626 rows.
struct RowShape {
  int64_t rows, cols;
};
constexpr RowShape kRowShapes[] = {{1, 1},     {3, 5},    {37, 77},    {257, 5},
                                   {1000, 33}, {64, 768}, {129, 3072}, {20011, 17}};

TEST_P(ElementwiseVsCpuTest, BroadcastRowsAndBiasAdd) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  for (const RowShape s : kRowShapes) {
    const std::string shape = absl::StrCat(s.rows, "x", s.cols);
    const std::vector<float> bias = RandomValues(rng_, dtype, s.cols);
    const Tensor out = Poisoned({s.rows, s.cols}, dtype, allocator);
    ASSERT_TRUE(BroadcastRows(nullptr, Upload(bias, {s.cols}, dtype, allocator), out).ok());
    Sync();
    const Tensor cpu_out = Tensor::Empty({s.rows, s.cols}, DType::kFloat32);
    ops::BroadcastRows(cpu_, Host(bias, {s.cols}), cpu_out);
    ExpectClose(out.ToFloatVector(), cpu_out.ToVector<float>(),
                std::vector<float>(s.rows * s.cols, 1.0f), 0.0, "BroadcastRows " + shape);

    // x += bias, the bias in this dtype and in fp32.
    const std::vector<float> x = RandomValues(rng_, dtype, s.rows * s.cols);
    for (DType bias_dtype : {dtype, DType::kFloat32}) {
      const Tensor gx = Upload(x, {s.rows, s.cols}, dtype, allocator);
      ASSERT_TRUE(BiasAdd(nullptr, Upload(bias, {s.cols}, bias_dtype, allocator), gx).ok());
      Sync();
      const Tensor cpu_x = Host(x, {s.rows, s.cols});
      ops::BiasAdd(cpu_, Host(bias, {s.cols}), cpu_x);
      std::vector<float> scale(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        scale[i] = std::abs(x[i]) + std::abs(bias[i % s.cols]);
      }
      ExpectClose(gx.ToFloatVector(), RoundedAll(dtype, cpu_x.ToVector<float>()), scale,
                  ToleranceFor(dtype),
                  absl::StrCat("BiasAdd ", DTypeName(bias_dtype), " bias ", shape));
    }
  }
}

TEST_P(ElementwiseVsCpuTest, BiasGradIsTheColumnSumsAndDeterministic) {
  TRIDENT_SKIP_WITHOUT_GPU(allocator);
  SCOPED_TRACE(absl::StrCat("seed ", seed_));
  const DType dtype = GetParam();
  for (const RowShape s : kRowShapes) {
    const std::vector<float> dy = RandomValues(rng_, dtype, s.rows * s.cols);
    const std::vector<float> db0 = RandomValues(rng_, DType::kBFloat16, s.cols);
    const Tensor cpu_db = Host(db0, {s.cols});
    ops::BiasGrad(cpu_, Host(dy, {s.rows, s.cols}), cpu_db);
    std::vector<float> scale(s.cols);
    for (int64_t c = 0; c < s.cols; ++c) {
      double sum = std::abs(db0[c]);
      for (int64_t r = 0; r < s.rows; ++r) sum += std::abs(dy[r * s.cols + c]);
      scale[c] = static_cast<float>(sum);
    }
    // dbias in this dtype, and fp32 (fp32 gradients of 16-bit activations).
    const Tensor gdy = Upload(dy, {s.rows, s.cols}, dtype, allocator);
    for (DType db_dtype : {dtype, DType::kFloat32}) {
      const std::string what =
          absl::StrCat("BiasGrad ", s.rows, "x", s.cols, " into ", DTypeName(db_dtype));
      const Tensor db = Upload(db0, {s.cols}, db_dtype, allocator);
      ASSERT_TRUE(BiasGrad(nullptr, gdy, db).ok());
      const Tensor again = Upload(db0, {s.cols}, db_dtype, allocator);
      ASSERT_TRUE(BiasGrad(nullptr, gdy, again).ok());
      Sync();
      const std::vector<float> got = db.ToFloatVector();
      ExpectClose(got, RoundedAll(db_dtype, cpu_db.ToVector<float>()), scale,
                  ToleranceFor(db_dtype), what);
      const std::vector<float> got_again = again.ToFloatVector();
      for (int64_t c = 0; c < s.cols; ++c) {
        ASSERT_EQ(std::bit_cast<uint32_t>(got[c]), std::bit_cast<uint32_t>(got_again[c]))
            << what << ": column " << c << " differs between two runs";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(StorageDTypes, ElementwiseVsCpuTest,
                         ::testing::Values(DType::kFloat32, DType::kBFloat16, DType::kFloat16),
                         StorageDTypeName);

}  // namespace
}  // namespace trident::cuda
