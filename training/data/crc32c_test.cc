#include "training/data/crc32c.h"

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace trident::data {
namespace {

TEST(Crc32cTest, MatchesPublishedCheckValues) {
  // The CRC-32C check value (RFC 3720 and every CRC catalogue).
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // RFC 3720 B.4: 32 bytes of zeros, and of 0xFF.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32cExtendPortable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32cTest, HardwareAndPortableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 generator(7);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(generator());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t length = 0; start + length <= 300; ++length) {
      ASSERT_EQ(Crc32cExtend(0, data.data() + start, length),
                Crc32cExtendPortable(0, data.data() + start, length))
          << "start " << start << " length " << length;
    }
  }
}

TEST(Crc32cTest, ExtendingEqualsOneShot) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    const uint32_t head = Crc32cExtend(0, text.data(), cut);
    EXPECT_EQ(Crc32cExtend(head, text.data() + cut, text.size() - cut), Crc32c(text));
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::string data = "token payload bytes";
  const uint32_t original = Crc32c(data);
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= static_cast<char>(1 << bit);
      EXPECT_NE(Crc32c(data), original) << byte << ":" << bit;
      data[byte] ^= static_cast<char>(1 << bit);
    }
  }
}

}  // namespace
}  // namespace trident::data
