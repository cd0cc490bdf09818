#include "core/io/crc32c.h"

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace trident::io {
namespace {

using internal::Crc32cExtendHardware;
using internal::Crc32cExtendPortable;

std::string Bytes(std::initializer_list<int> values) {
  std::string bytes;
  for (const int v : values) bytes.push_back(static_cast<char>(v));
  return bytes;
}

// Deterministic pseudo-random bytes, so a failure reproduces.
std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(generator());
  return bytes;
}

TEST(Crc32cTest, KnownVectors) {
  struct Vector {
    std::string data;
    uint32_t crc;
  };
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  const std::vector<Vector> vectors = {
      {"", 0x00000000u},
      {"a", 0xC1D04330u},
      // The CRC-32C check value (RFC 3720 and every CRC catalogue).
      {"123456789", 0xE3069283u},
      // RFC 3720 (iSCSI), appendix B.4.
      {std::string(32, '\0'), 0x8A9136AAu},
      {std::string(32, '\xff'), 0x62A8AB43u},
      {ascending, 0x46DD794Eu},
      {descending, 0x113FDB5Cu},
      // RFC 3720 B.4: an iSCSI read command PDU.
      {Bytes({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
              0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
              0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
              0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}),
       0xD9963A56u},
  };
  for (const Vector& v : vectors) {
    SCOPED_TRACE(testing::Message() << "length " << v.data.size());
    // Every implementation and every entry point.
    EXPECT_EQ(Crc32cExtendPortable(0, v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(Crc32cExtendHardware(0, v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(Crc32cExtend(0, v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(Crc32c(absl::string_view(v.data)), v.crc);
    EXPECT_EQ(Crc32c(v.data.data(), v.data.size()), v.crc);
    EXPECT_EQ(Crc32c(absl::MakeConstSpan(reinterpret_cast<const std::byte*>(v.data.data()),
                                         v.data.size())),
              v.crc);
  }
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // a string literal picks string_view
}

TEST(Crc32cTest, HardwarePathIsCompiledIn) {
  // The build targets x86-64-v3, which includes SSE4.2.
#if defined(__SSE4_2__)
  EXPECT_TRUE(internal::Crc32cHasHardware());
#else
  EXPECT_FALSE(internal::Crc32cHasHardware());
#endif
}

TEST(Crc32cTest, HardwareMatchesPortableAtEveryAlignmentAndLength) {
  const std::string buffer = RandomBytes(4096 + 64, 7);
  for (const uint32_t seed_crc : {0u, 0x12345678u}) {
    for (size_t offset = 0; offset < 16; ++offset) {
      for (size_t length = 0; length < 300; ++length) {
        const char* data = buffer.data() + offset;
        const uint32_t portable = Crc32cExtendPortable(seed_crc, data, length);
        ASSERT_EQ(Crc32cExtendHardware(seed_crc, data, length), portable)
            << "crc " << seed_crc << " offset " << offset << " length " << length;
        ASSERT_EQ(Crc32cExtend(seed_crc, data, length), portable)
            << "crc " << seed_crc << " offset " << offset << " length " << length;
      }
    }
  }
  EXPECT_EQ(Crc32cExtendHardware(0, buffer.data(), buffer.size()),
            Crc32cExtendPortable(0, buffer.data(), buffer.size()));
}

TEST(Crc32cTest, ExtendEqualsCrcOfConcatenation) {
  const std::string data = RandomBytes(1000, 11);
  const uint32_t whole = Crc32c(absl::string_view(data));
  for (size_t split = 0; split <= data.size(); ++split) {
    const uint32_t head = Crc32c(data.data(), split);
    ASSERT_EQ(Crc32cExtend(head, data.data() + split, data.size() - split), whole) << split;
    ASSERT_EQ(Crc32cExtendPortable(head, data.data() + split, data.size() - split), whole)
        << split;
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::string data = "checkpoint and token payload bytes";
  const uint32_t original = Crc32c(absl::string_view(data));
  for (size_t i = 0; i < data.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      data[i] = static_cast<char>(data[i] ^ (1 << bit));
      EXPECT_NE(Crc32c(absl::string_view(data)), original) << i << ":" << bit;
      data[i] = static_cast<char>(data[i] ^ (1 << bit));
    }
  }
}

}  // namespace
}  // namespace trident::io
