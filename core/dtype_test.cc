#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace trident {
namespace {

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kInt32), 4u);
  EXPECT_EQ(DTypeSize(DType::kInt64), 8u);
  for (DType d : {DType::kFloat32, DType::kBFloat16, DType::kFloat16, DType::kInt32,
                  DType::kInt64}) {
    auto parsed = ParseDType(DTypeName(d));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, d);
  }
  auto bad = ParseDType("fp8");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fp8"), absl::string_view::npos);
}

TEST(DTypeTest, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(ToFloat(ToBFloat16(1.0f)), 1.0f);
  EXPECT_EQ(ToFloat(ToBFloat16(-3.5f)), -3.5f);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(ToFloat(ToBFloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6).
  EXPECT_EQ(ToFloat(ToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(ToFloat(ToBFloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(ToFloat(ToBFloat16(std::numeric_limits<float>::infinity()))));
}

TEST(DTypeTest, Float16RoundTripsEveryHalf) {
  // Every finite binary16 value converts to float and back to the same bits.
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const Float16 h{static_cast<uint16_t>(bits)};
    const float f = ToFloat(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(ToFloat(ToFloat16(f))));
      continue;
    }
    EXPECT_EQ(ToFloat16(f).bits, h.bits) << "bits " << bits << " value " << f;
  }
}

TEST(DTypeTest, Float16RoundsAndSaturates) {
  EXPECT_EQ(ToFloat(ToFloat16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(ToFloat(ToFloat16(65520.0f))));  // Rounds past the max.
  EXPECT_EQ(ToFloat(ToFloat16(1.0f + std::ldexp(1.0f, -11))), 1.0f);  // Tie to even.
  EXPECT_EQ(ToFloat(ToFloat16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // Min subnormal.
  EXPECT_EQ(ToFloat(ToFloat16(std::ldexp(1.0f, -26))), 0.0f);
}

}  // namespace
}  // namespace trident
