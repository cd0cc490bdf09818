#include "training/device_peak.h"

#include "gtest/gtest.h"

namespace trident::training {
namespace {

TEST(DatasheetPeakTest, H100SxmByPrecision) {
  const auto bf16 = DatasheetPeak("NVIDIA H100 80GB HBM3", BF16);
  ASSERT_TRUE(bf16.has_value());
  EXPECT_EQ(bf16->flops_per_second, 989e12);
  EXPECT_NE(bf16->source.find("H100 SXM5"), std::string::npos) << bf16->source;
  EXPECT_EQ(DatasheetPeak("NVIDIA H100 80GB HBM3", FP16)->flops_per_second, 989e12);
  EXPECT_EQ(DatasheetPeak("NVIDIA H100 80GB HBM3", FP32)->flops_per_second, 67e12);
  EXPECT_EQ(DatasheetPeak("NVIDIA H200", BF16)->flops_per_second, 989e12);
}

TEST(DatasheetPeakTest, UnknownOrLowerClockedPartsHaveNoPeak) {
  EXPECT_FALSE(DatasheetPeak("NVIDIA H100 PCIe", BF16).has_value());
  EXPECT_FALSE(DatasheetPeak("NVIDIA H100 NVL", BF16).has_value());
  EXPECT_FALSE(DatasheetPeak("NVIDIA A100-SXM4-80GB", BF16).has_value());
  EXPECT_FALSE(DatasheetPeak("", FP32).has_value());
}

}  // namespace
}  // namespace trident::training
