#include "core/cuda/gemm_plan_key.h"

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(GemmPlanKeyTest, EveryFieldSeparatesKeys) {
  const GemmPlanKey base{.m = 768, .n = 1024, .k = 3072};
  absl::flat_hash_map<GemmPlanKey, int> cache;
  cache[base] = 0;
  GemmPlanKey key = base;
  key.m = 769;
  cache[key] = 1;
  key = base;
  key.n = 1025;
  cache[key] = 2;
  key = base;
  key.k = 3073;
  cache[key] = 3;
  key = base;
  key.transpose_b = true;
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
  EXPECT_EQ(cache.size(), 9u);
  // The same key finds the same entry.
  EXPECT_EQ(cache.at(GemmPlanKey{.m = 768, .n = 1024, .k = 3072}), 0);
}

TEST(GemmPlanKeyTest, DescribesItself) {
  EXPECT_EQ(
      GemmPlanKeyToString({.m = 4,
                           .n = 5,
                           .k = 3,
                           .transpose_b = true,
                           .dtype = DType::kFloat32,
                           .epilogue = LtEpilogue::kBiasGradA,
                           .allow_tf32 = true}),
      "m=4 n=5 k=3 B:T " + std::string(DTypeName(DType::kFloat32)) + "(tf32) bgrada align 256");
}

}  // namespace
}  // namespace trident::cuda
