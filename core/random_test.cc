#include "core/random.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace trident {
namespace {

using Words = std::array<uint32_t, 4>;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution.
TEST(PhiloxTest, KnownAnswers) {
  EXPECT_EQ(Philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(Philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(Philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(NameHashTest, Fnv1a64KnownValues) {
  EXPECT_EQ(NameHash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(NameHash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(NameHash("foobar"), 0x85944171f73967e8ull);
  EXPECT_NE(NameHash("h.0.attn.c_attn.weight"), NameHash("h.1.attn.c_attn.weight"));
}

std::vector<float> Full(const ExecContext& ctx, int64_t rows, int64_t cols, uint64_t seed,
                        const char* name) {
  Tensor t = Tensor::Empty({rows, cols}, DType::kFloat32);
  FillNormal(ctx, t, seed, name, 0.02f);
  return t.ToVector<float>();
}

TEST(FillNormalTest, ValueDependsOnlyOnSeedNameAndIndex) {
  ExecContext ctx = ExecContext::Cpu();
  std::vector<float> a = Full(ctx, 6, 10, 1234, "wte");
  const uint64_t hash = NameHash("wte");
  for (int64_t i = 0; i < 60; ++i) {
    ASSERT_EQ(a[i], NormalValue(1234, hash, i, 0.02f)) << i;
  }
  // The same elements regardless of the tensor's shape or thread count.
  ExecContext ctx4 = ExecContext::Cpu(4);
  Tensor flat = Tensor::Empty({60}, DType::kFloat32);
  FillNormal(ctx4, flat, 1234, "wte", 0.02f);
  EXPECT_EQ(flat.ToVector<float>(), a);
  EXPECT_NE(Full(ctx, 6, 10, 1235, "wte"), a);
  EXPECT_NE(Full(ctx, 6, 10, 1234, "wpe"), a);
}

// A shard generated alone equals the matching block of the full matrix, bitwise,
// for column shards, row shards, odd offsets and strided destinations.
TEST(FillNormalTest, ShardsEqualSlicesOfTheFullMatrixBitwise) {
  ExecContext ctx = ExecContext::Cpu(2);
  const int64_t rows = 7, cols = 13;
  std::vector<float> full = Full(ctx, rows, cols, 42, "h.3.mlp.c_fc.weight");
  struct Case {
    int64_t r0, nr, c0, nc;
  };
  for (Case c : {Case{0, 7, 0, 5}, Case{0, 7, 5, 8}, Case{3, 4, 0, 13}, Case{1, 3, 3, 7},
                 Case{6, 1, 12, 1}}) {
    Tensor shard = Tensor::Empty({c.nr, c.nc}, DType::kFloat32);
    FillNormal(ctx, shard, 42, "h.3.mlp.c_fc.weight", 0.02f, {rows, cols, c.r0, c.c0});
    std::vector<float> got = shard.ToVector<float>();
    for (int64_t r = 0; r < c.nr; ++r) {
      for (int64_t k = 0; k < c.nc; ++k) {
        ASSERT_EQ(got[r * c.nc + k], full[(c.r0 + r) * cols + c.c0 + k])
            << "shard rows " << c.r0 << "+" << c.nr << " cols " << c.c0 << "+" << c.nc;
      }
    }
  }
  // A strided destination: the shard written into a column range of a bigger buffer.
  Tensor buffer = Tensor::Zeros({rows, 20}, DType::kFloat32);
  Tensor window = buffer.Slice(1, 4, 6);
  FillNormal(ctx, window, 42, "h.3.mlp.c_fc.weight", 0.02f, {rows, cols, 0, 7});
  std::vector<float> got = buffer.ToVector<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < 20; ++k) {
      const float expected = (k >= 4 && k < 10) ? full[r * cols + 7 + (k - 4)] : 0.0f;
      ASSERT_EQ(got[r * 20 + k], expected) << r << "," << k;
    }
  }
  // A 1-D bias shard.
  std::vector<float> bias = Full(ctx, 1, 9, 7, "bias");
  Tensor part = Tensor::Empty({4}, DType::kFloat32);
  FillNormal(ctx, part, 7, "bias", 0.02f, {1, 9, 0, 5});
  EXPECT_EQ(part.ToVector<float>(), std::vector<float>(bias.begin() + 5, bias.end()));
}

TEST(FillNormalTest, MeanStdAndTailsOfAMillionSamples) {
  ExecContext ctx = ExecContext::Cpu(2);
  const int64_t n = 1000000;
  Tensor t = Tensor::Empty({n}, DType::kFloat32);
  FillNormal(ctx, t, 2024, "samples", 1.0f);
  std::vector<float> v = t.ToVector<float>();
  double sum = 0, sq = 0;
  int64_t tails = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sq += static_cast<double>(x) * x;
    tails += std::fabs(x) > 2.0f;
  }
  const double mean = sum / n;
  const double std = std::sqrt(sq / n - mean * mean);
  // Standard errors: mean 1e-3, std ~7e-4, tail fraction ~2e-4 (p = 0.0455).
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(std, 1.0, 4e-3);
  EXPECT_NEAR(static_cast<double>(tails) / n, 0.0455, 1.5e-3);
}

TEST(FillUniformTest, RangeMomentsAndShards) {
  ExecContext ctx = ExecContext::Cpu();
  const int64_t n = 1000000;
  Tensor t = Tensor::Empty({n}, DType::kFloat32);
  FillUniform(ctx, t, 9, "u", -1.0f, 3.0f);
  std::vector<float> v = t.ToVector<float>();
  double sum = 0, sq = 0;
  for (float x : v) {
    ASSERT_GE(x, -1.0f);
    ASSERT_LE(x, 3.0f);
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 1.0, 1e-2);                          // se 1.2e-3
  EXPECT_NEAR(sq / n - mean * mean, 16.0 / 12.0, 1e-2);  // se ~1e-3
  Tensor shard = Tensor::Empty({10}, DType::kFloat32);
  FillUniform(ctx, shard, 9, "u", -1.0f, 3.0f, {1, n, 0, 500});
  EXPECT_EQ(shard.ToVector<float>(), std::vector<float>(v.begin() + 500, v.begin() + 510));
}

TEST(FillConstantTest, FillsContiguousAndStridedViews) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor t = Tensor::Zeros({3, 4}, DType::kFloat32);
  FillConstant(ctx, t.Slice(1, 1, 2), 1.5f);
  EXPECT_EQ(t.ToVector<float>(),
            (std::vector<float>{0, 1.5, 1.5, 0, 0, 1.5, 1.5, 0, 0, 1.5, 1.5, 0}));
}

// Host memory that calls itself GPU 0 and counts the host transfers: stands
// in for a device allocator, so the fills' staging path runs without a GPU.
class OtherDeviceAllocator final : public Allocator {
 public:
  OtherDeviceAllocator() : Allocator("fake-gpu") {}
  Device device() const override { return Device::Cuda(0); }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) const override {
    ++copies_from_host;
    std::memcpy(dst, host_src, bytes);
  }
  void CopyToHost(void* host_dst, const void* src, size_t bytes) const override {
    std::memcpy(host_dst, src, bytes);
  }
  void SetZero(void* dst, size_t bytes) const override { std::memset(dst, 0, bytes); }
  mutable int copies_from_host = 0;

 protected:
  void* RawAllocate(size_t bytes) override { return std::aligned_alloc(kAlignment, bytes); }
  void RawFree(void* ptr, size_t) override { std::free(ptr); }
};

TEST(FillOnAnotherDeviceTest, StagedThroughTheHostBitForBit) {
  auto gpu = std::make_shared<OtherDeviceAllocator>();
  const ExecContext gpu_ctx(Device::Cuda(0), nullptr, 1, gpu);
  const ExecContext cpu_ctx = ExecContext::Cpu();
  const MatrixShard shard{.global_rows = 6, .global_cols = 10, .row_offset = 2, .col_offset = 3};

  // Contiguous: one upload, the CPU fill's bits.
  Tensor on_gpu = Tensor::Zeros({4, 5}, DType::kFloat32, gpu);
  Tensor on_cpu = Tensor::Zeros({4, 5}, DType::kFloat32);
  FillNormal(gpu_ctx, on_gpu, 7, "h.0.attn.c_attn.weight", 0.02f, shard);
  FillNormal(cpu_ctx, on_cpu, 7, "h.0.attn.c_attn.weight", 0.02f, shard);
  EXPECT_EQ(gpu->copies_from_host, 1);
  EXPECT_EQ(on_gpu.ToVector<float>(), on_cpu.ToVector<float>());

  // A column window (strided view): one upload per row, the rest untouched.
  Tensor whole_gpu = Tensor::Zeros({4, 8}, DType::kFloat32, gpu);
  Tensor whole_cpu = Tensor::Zeros({4, 8}, DType::kFloat32);
  gpu->copies_from_host = 0;
  FillUniform(gpu_ctx, whole_gpu.Slice(1, 2, 5), 3, "w", -1.0f, 1.0f, shard);
  FillUniform(cpu_ctx, whole_cpu.Slice(1, 2, 5), 3, "w", -1.0f, 1.0f, shard);
  EXPECT_EQ(gpu->copies_from_host, 4);
  EXPECT_EQ(whole_gpu.ToVector<float>(), whole_cpu.ToVector<float>());

  FillConstant(gpu_ctx, whole_gpu.Slice(1, 0, 1), 2.5f);
  FillConstant(cpu_ctx, whole_cpu.Slice(1, 0, 1), 2.5f);
  EXPECT_EQ(whole_gpu.ToVector<float>(), whole_cpu.ToVector<float>());
}

TEST(FillDeathTest, BadShardsAndTensorsAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor t = Tensor::Empty({4, 4}, DType::kFloat32);
  EXPECT_DEATH(FillNormal(ctx, t, 1, "w", 1.0f, {4, 6, 0, 3}), "cols \\[3, 7\\) fall outside");
  EXPECT_DEATH(FillNormal(ctx, t, 1, "w", 1.0f, {5, 4, 2, 0}), "rows \\[2, 6\\) fall outside");
  Tensor i = Tensor::Empty({4}, DType::kInt32);
  EXPECT_DEATH(FillNormal(ctx, i, 1, "w", 1.0f), "fills fp32 tensors");
  EXPECT_DEATH(FillUniform(ctx, t, 1, "w", 2.0f, 1.0f), "low 2 > high 1");
}

}  // namespace
}  // namespace trident
