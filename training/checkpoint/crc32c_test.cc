#include "training/checkpoint/crc32c.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "gtest/gtest.h"

namespace trident::checkpoint {
namespace {

using internal::Crc32cExtendHardware;
using internal::Crc32cExtendPortable;

// Both implementations, so every vector checks both.
uint32_t Portable(const std::string& data) { return Crc32cExtendPortable(0, data.data(), data.size()); }
uint32_t Hardware(const std::string& data) { return Crc32cExtendHardware(0, data.data(), data.size()); }

std::string Bytes(std::initializer_list<int> values) {
  std::string bytes;
  for (const int v : values) bytes.push_back(static_cast<char>(v));
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
    EXPECT_EQ(Portable(v.data), v.crc);
    EXPECT_EQ(Hardware(v.data), v.crc);
    EXPECT_EQ(Crc32c(absl::string_view(v.data)), v.crc);
  }
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
  absl::BitGen random;
  std::string buffer(4096 + 64, '\0');
  for (char& c : buffer) c = static_cast<char>(absl::Uniform<int>(random, 0, 256));
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t length = 0; length < 300; ++length) {
      const char* data = buffer.data() + offset;
      ASSERT_EQ(Crc32cExtendHardware(0x12345678u, data, length),
                Crc32cExtendPortable(0x12345678u, data, length))
          << "offset " << offset << " length " << length;
    }
  }
  EXPECT_EQ(Crc32cExtendHardware(0, buffer.data(), buffer.size()),
            Crc32cExtendPortable(0, buffer.data(), buffer.size()));
}

TEST(Crc32cTest, ExtendEqualsCrcOfConcatenation) {
  absl::BitGen random;
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(absl::Uniform<int>(random, 0, 256));
  const uint32_t whole = Crc32c(absl::string_view(data));
  for (size_t split = 0; split <= data.size(); split += 37) {
    const uint32_t head = Crc32c(data.data(), split);
    EXPECT_EQ(Crc32cExtend(head, data.data() + split, data.size() - split), whole) << split;
    EXPECT_EQ(Crc32cExtendPortable(head, data.data() + split, data.size() - split), whole);
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  std::string data = "checkpoint payload bytes";
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
}  // namespace trident::checkpoint
