#include "core/cuda/size_classes.h"

#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

TEST(SizeClassTest, ZeroStaysZero) { EXPECT_EQ(SizeClassOf(0), 0u); }

TEST(SizeClassTest, SmallRequestsRoundToHalfKilobytes) {
  EXPECT_EQ(SizeClassOf(1), 512u);
  EXPECT_EQ(SizeClassOf(512), 512u);
  EXPECT_EQ(SizeClassOf(513), 1024u);
  EXPECT_EQ(SizeClassOf(kLargeThreshold - 1), kLargeThreshold);
}

TEST(SizeClassTest, LargeRequestsRoundToTwoMebibytes) {
  EXPECT_EQ(SizeClassOf(kLargeThreshold), kLargeGranularity);
  EXPECT_EQ(SizeClassOf(kLargeGranularity), kLargeGranularity);
  EXPECT_EQ(SizeClassOf(kLargeGranularity + 1), 2 * kLargeGranularity);
}

TEST(SizeClassTest, EveryClassHoldsItsRequestWithBoundedPadding) {
  for (size_t bytes = 1; bytes < (size_t{9} << 20); bytes = bytes * 3 / 2 + 7) {
    const size_t size_class = SizeClassOf(bytes);
    EXPECT_GE(size_class, bytes);
    const size_t granularity = bytes < kLargeThreshold ? kSmallGranularity : kLargeGranularity;
    EXPECT_LT(size_class - bytes, granularity) << bytes;
    EXPECT_EQ(size_class % granularity, 0u) << bytes;
  }
}

}  // namespace
}  // namespace trident::cuda
