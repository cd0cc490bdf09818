#include "core/cuda/gemm_plan_key.h"

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(GemmPlanKeyTest, EveryFieldSeparatesKeys) {
  const GemmPlanKey base{.layout = ForwardLayout(1024, 3072, 768)};
  absl::flat_hash_map<GemmPlanKey, int> cache;
  cache[base] = 0;
  GemmPlanKey key = base;
  key.layout.m = 769;
  cache[key] = 1;
  key = base;
  key.layout.b.transpose = true;
  cache[key] = 2;
  key = base;
  key.layout.d.ld = 1000;  // a strided C (a column window)
  cache[key] = 3;
  key = base;
  key.layout.batch = 12;
  cache[key] = 4;
  key = base;
  key.dtype = DType::kBFloat16;
  cache[key] = 5;
  key = base;
  key.epilogue = LtEpilogue::kBiasGeluAux;
  cache[key] = 6;
  key = base;
  key.allow_tf32 = true;
  cache[key] = 7;
  key = base;
  key.alignment_bytes = 16;
  cache[key] = 8;
  key = base;
  key.layout.a.batch_stride = 64;
  cache[key] = 9;
  key = base;
  key.epilogue = LtEpilogue::kNone;
  cache[key] = 10;
  EXPECT_EQ(cache.size(), 11u);
  // The same key finds the same entry.
  EXPECT_EQ(cache.at(GemmPlanKey{.layout = ForwardLayout(1024, 3072, 768)}), 0);
}

TEST(GemmPlanKeyTest, DescribesItself) {
  EXPECT_EQ(GemmPlanKeyToString({.layout = WeightGradLayout(3, 5, 4),
                                 .dtype = DType::kFloat32,
                                 .epilogue = LtEpilogue::kBiasGradA,
                                 .allow_tf32 = true}),
            "m=4 n=5 k=3 A[4 x 3, ld 4, N] B[5 x 3, ld 5, T] D[4 x 5, ld 4, N] " +
                std::string(DTypeName(DType::kFloat32)) + "(tf32) bgrada align 256");
}

}  // namespace
}  // namespace trident::cuda
