// The CUDA embedding kernels against their CPU twins (core/ops/embedding.h on
// a CPU context) on the same rounded random inputs, outputs poisoned with NaN
// before each run.
//
// Every comparison here is EXACT (tolerance 0), whatever the dtype: the
// gathers are copies, the position add is one fp32 add rounded once, and the
// gradients add the same fp32 values in the same order (token order onto the
// existing value, rounded once on store) as the CPU twin, whose 16-bit path
// also converts to fp32, accumulates and rounds once.
//
// The refusal tests use host tensors and run without a GPU; the kAbort tests
// are death tests (a trapped kernel poisons the CUDA context) in a child process.

#include "core/cuda/ops/embedding.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/cuda/gpu_test_util.h"
#include "core/exec_context.h"
#include "core/ops/embedding.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::trident::ops::OutOfRangeIds;

const std::shared_ptr<Allocator>& HostAllocator() {
  static const auto* allocator = new std::shared_ptr<Allocator>(CpuAllocator::Create());
  return *allocator;
}

void ExpectSame(const std::vector<float>& actual, const std::vector<float>& expected,
                const std::string& what) {
  ExpectClose(actual, expected, std::vector<float>(expected.size(), 1.0f), 0.0, what);
}

// n ids uniform in [lo, hi): a small range repeats ids often.
std::vector<int32_t> RandomIds(std::mt19937& rng, int64_t n, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> uniform(lo, hi - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = uniform(rng);
  return ids;
}

Tensor IdsOn(const std::vector<int32_t>& ids, const Shape& shape,
             const std::shared_ptr<Allocator>& allocator) {
  const Tensor t = Tensor::Empty(shape, DType::kInt32, allocator);
  t.CopyFrom(ids);
  return t;
}

struct Case {
  DType dtype;       // Activations and tables.
  DType grad_dtype;  // Gradient tables.
  int64_t batch, seq, table_rows, cols;
  int64_t row_start;  // > 0: a vocabulary shard; ids span [0, row_start + 2 * rows).
  std::string Name() const {
    return absl::StrCat(DTypeName(dtype), "_grad", DTypeName(grad_dtype), "_", batch, "x", seq,
                        "_table", table_rows, "x", cols, "_start", row_start);
  }
};

class EmbeddingVsCpuTest : public ::testing::TestWithParam<Case> {};

TEST_P(EmbeddingVsCpuTest, GatherScatterAndPositionsMatchTheCpuExactly) {
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Case c = GetParam();
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  const ExecContext cpu = ExecContext::Cpu();
  const int64_t n = c.batch * c.seq, cols = c.cols;
  const Shape ids_shape{c.batch, c.seq}, act_shape{c.batch, c.seq, cols};
  const Shape table_shape{c.table_rows, cols};
  // A shard sees ids below, inside and above its rows; the full table only its own.
  const int32_t hi =
      static_cast<int32_t>(c.row_start > 0 ? c.row_start + 2 * c.table_rows : c.table_rows);
  const std::vector<int32_t> ids = RandomIds(rng, n, 0, hi);
  const std::vector<float> table = RandomValues(rng, c.dtype, c.table_rows * cols);
  const Tensor g_ids = IdsOn(ids, ids_shape, gpu);
  const Tensor h_ids = IdsOn(ids, ids_shape, HostAllocator());
  const OutOfRangeIds policy = c.row_start > 0 ? OutOfRangeIds::kSkip : OutOfRangeIds::kAbort;

  // GatherRows (kSkip on a shard: zero rows for other ranks' ids; kAbort on the
  // full table, where the CPU's kSkip result is the same for in-range ids).
  const Tensor out = Poisoned(act_shape, c.dtype, gpu);
  ASSERT_TRUE(
      GatherRows(nullptr, g_ids, Upload(table, table_shape, c.dtype, gpu), c.row_start, policy, out)
          .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_out = Tensor::Empty(act_shape, c.dtype);
  ops::GatherRows(cpu, h_ids, Upload(table, table_shape, c.dtype, HostAllocator()), c.row_start,
                  cpu_out);
  const std::vector<float> gathered = out.ToFloatVector();
  ExpectSame(gathered, cpu_out.ToFloatVector(), "GatherRows");

  // AddPositionEmbedding onto the gathered rows.
  const std::vector<float> wpe = RandomValues(rng, c.dtype, (c.seq + 3) * cols);
  const Shape wpe_shape{c.seq + 3, cols};
  ASSERT_TRUE(AddPositionEmbedding(nullptr, Upload(wpe, wpe_shape, c.dtype, gpu), out).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ops::AddPositionEmbedding(cpu, Upload(wpe, wpe_shape, c.dtype, HostAllocator()), cpu_out);
  ExpectSame(out.ToFloatVector(), cpu_out.ToFloatVector(), "AddPositionEmbedding");

  // ScatterAddRows onto existing gradients (repeated ids sum in token order).
  const std::vector<float> dout = RandomValues(rng, c.dtype, n * cols);
  const std::vector<float> dtable0 = RandomValues(rng, c.grad_dtype, c.table_rows * cols);
  const Tensor dtable = Upload(dtable0, table_shape, c.grad_dtype, gpu);
  ASSERT_TRUE(ScatterAddRows(nullptr, g_ids, Upload(dout, act_shape, c.dtype, gpu), c.row_start,
                             policy, dtable)
                  .ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor h_dout = Upload(dout, act_shape, c.dtype, HostAllocator());
  const Tensor cpu_dtable = Upload(dtable0, table_shape, c.grad_dtype, HostAllocator());
  ops::ScatterAddRows(cpu, h_ids, h_dout, c.row_start, cpu_dtable);
  ExpectSame(dtable.ToFloatVector(), cpu_dtable.ToFloatVector(), "ScatterAddRows");

  // PositionEmbeddingGrad onto existing gradients (rows >= T untouched).
  const std::vector<float> dwpe0 = RandomValues(rng, c.grad_dtype, (c.seq + 3) * cols);
  const Tensor dwpe = Upload(dwpe0, wpe_shape, c.grad_dtype, gpu);
  ASSERT_TRUE(PositionEmbeddingGrad(nullptr, Upload(dout, act_shape, c.dtype, gpu), dwpe).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const Tensor cpu_dwpe = Upload(dwpe0, wpe_shape, c.grad_dtype, HostAllocator());
  ops::PositionEmbeddingGrad(cpu, h_dout, cpu_dwpe);
  ExpectSame(dwpe.ToFloatVector(), cpu_dwpe.ToFloatVector(), "PositionEmbeddingGrad");
}

INSTANTIATE_TEST_SUITE_P(
    DTypesAndShapes, EmbeddingVsCpuTest,
    ::testing::Values(
        // Many repeats (table of 50 rows), odd width 100 (scalar path).
        Case{DType::kFloat32, DType::kFloat32, 4, 37, 50, 100, 0},
        // GPT-2 small's width (16-byte packs), ids repeated across 8 x 64 tokens.
        Case{DType::kFloat32, DType::kFloat32, 8, 64, 1000, 768, 0},
        // GPT-2's padded vocabulary (narrow rows to keep the test small).
        Case{DType::kFloat32, DType::kFloat32, 4, 128, 50304, 40, 0},
        // A vocabulary shard: ids of other ranks below and above its rows.
        Case{DType::kFloat32, DType::kFloat32, 3, 50, 40, 33, 40},
        Case{DType::kBFloat16, DType::kBFloat16, 4, 37, 50, 100, 0},
        Case{DType::kBFloat16, DType::kBFloat16, 8, 64, 1000, 768, 0},
        Case{DType::kBFloat16, DType::kFloat32, 8, 64, 300, 768, 0},
        Case{DType::kBFloat16, DType::kBFloat16, 3, 50, 40, 33, 40},
        Case{DType::kFloat16, DType::kFloat16, 4, 37, 50, 96, 60}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.Name(); });

// --- kAbort: the kernel traps; the next synchronisation reports it. ---

TEST(EmbeddingCudaDeathTest, AbortPolicyTrapsOnAnOutOfRangeId) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // A fresh process and CUDA context.
  TRIDENT_SKIP_WITHOUT_GPU(gpu);
  const Tensor table = Tensor::Zeros({10, 8}, DType::kFloat32, gpu);
  const Tensor ids = IdsOn({1, 2, 10, 3}, {4}, gpu);  // 10 is one past the last row.
  const Tensor out = Tensor::Zeros({4, 8}, DType::kFloat32, gpu);
  EXPECT_DEATH(LaunchSyncAndAbortOnError(
                   [&] { return GatherRows(nullptr, ids, table, 0, OutOfRangeIds::kAbort, out); }),
               "synchronised: cudaError");
  EXPECT_DEATH(LaunchSyncAndAbortOnError([&] {
                 return ScatterAddRows(nullptr, ids, out, 0, OutOfRangeIds::kAbort, table);
               }),
               "synchronised: cudaError");
  // The same ids under kSkip are fine (and leave the context usable).
  LaunchSyncAndAbortOnError(
      [&] { return GatherRows(nullptr, ids, table, 0, OutOfRangeIds::kSkip, out); });
  LaunchSyncAndAbortOnError(
      [&] { return ScatterAddRows(nullptr, ids, out, 0, OutOfRangeIds::kSkip, table); });
}

// --- Refusals: host tensors, no GPU needed. ---

std::string RefusalOf(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(EmbeddingCudaTest, RefusesBadArgumentsByName) {
  const Tensor ids = Tensor::Zeros({2, 3}, DType::kInt32);
  const Tensor table = Tensor::Zeros({10, 8}, DType::kFloat32);
  const Tensor out = Tensor::Zeros({2, 3, 8}, DType::kFloat32);
  const Tensor wpe = Tensor::Zeros({3, 8}, DType::kFloat32);
  constexpr OutOfRangeIds kSkip = OutOfRangeIds::kSkip;

  EXPECT_EQ(
      RefusalOf(GatherRows(nullptr, Tensor::Zeros({2, 3}, DType::kFloat32), table, 0, kSkip, out)),
      "GatherRows: ids has dtype fp32, expected int32");
  EXPECT_EQ(
      RefusalOf(GatherRows(nullptr, ids, Tensor::Zeros({80}, DType::kFloat32), 0, kSkip, out)),
      "GatherRows: table has shape [80], expected [rows, C]");
  EXPECT_EQ(RefusalOf(GatherRows(nullptr, ids, table, 0, kSkip,
                                 Tensor::Zeros({2, 3, 7}, DType::kFloat32))),
            "GatherRows: out has shape [2, 3, 7], expected its last dim to be 8, the width of "
            "table");
  EXPECT_EQ(RefusalOf(GatherRows(nullptr, ids, table, 0, kSkip,
                                 Tensor::Zeros({2, 2, 8}, DType::kFloat32))),
            "GatherRows: out has 32 elements (shape [2, 2, 8]), expected 48");
  EXPECT_EQ(RefusalOf(GatherRows(nullptr, ids, table, 0, kSkip,
                                 Tensor::Zeros({2, 3, 8}, DType::kBFloat16))),
            "GatherRows: out has dtype bf16, expected fp32 (the dtype of table)");
  EXPECT_EQ(RefusalOf(GatherRows(nullptr, ids, table, 0, kSkip, out)),
            "GatherRows: ids is on cpu, expected a CUDA device");
  EXPECT_EQ(RefusalOf(ScatterAddRows(nullptr, ids, Tensor::Zeros({6, 9}, DType::kFloat32), 0, kSkip,
                                     table)),
            "ScatterAddRows: dout has shape [6, 9], expected its last dim to be 8, the width of "
            "dtable");
  EXPECT_EQ(
      RefusalOf(ScatterAddRows(nullptr, ids, out, 0, kSkip, Tensor::Zeros({10, 8}, DType::kInt32))),
      "ScatterAddRows: dtable has dtype int32, expected fp32, bf16 or fp16");
  EXPECT_EQ(RefusalOf(AddPositionEmbedding(nullptr, Tensor::Zeros({2, 8}, DType::kFloat32), out)),
            "AddPositionEmbedding: out [2, 3, 8] [B, T, C] needs wpe [P >= T, C], got [2, 8]");
  EXPECT_EQ(RefusalOf(AddPositionEmbedding(nullptr, wpe, Tensor::Zeros({6, 8}, DType::kFloat32))),
            "AddPositionEmbedding: out [6, 8] [B, T, C] needs wpe [P >= T, C], got [3, 8]");
  EXPECT_EQ(RefusalOf(PositionEmbeddingGrad(nullptr, out, Tensor::Zeros({3, 9}, DType::kFloat32))),
            "PositionEmbeddingGrad: dout [2, 3, 8] [B, T, C] needs dwpe [P >= T, C], got [3, 9]");
  EXPECT_EQ(RefusalOf(PositionEmbeddingGrad(nullptr, out, wpe)),
            "PositionEmbeddingGrad: dout is on cpu, expected a CUDA device");
}

}  // namespace
}  // namespace trident::cuda
