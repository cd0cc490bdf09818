#include "core/io/little_endian.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace trident::io {
namespace {

TEST(LittleEndianTest, LowestByteComesFirst) {
  std::string out;
  AppendLittleEndian<uint8_t>(0xAB, &out);
  AppendLittleEndian<uint16_t>(0x0102, &out);
  AppendLittleEndian<uint32_t>(0x03040506u, &out);
  AppendLittleEndian<uint64_t>(0x0708090A0B0C0D0Eull, &out);
  EXPECT_EQ(out, std::string("\xAB"
                             "\x02\x01"
                             "\x06\x05\x04\x03"
                             "\x0E\x0D\x0C\x0B\x0A\x09\x08\x07",
                             15));
  EXPECT_EQ(LoadLittleEndian<uint8_t>(out.data()), 0xABu);
  EXPECT_EQ(LoadLittleEndian<uint16_t>(out.data() + 1), 0x0102u);
  EXPECT_EQ(LoadLittleEndian<uint32_t>(out.data() + 3), 0x03040506u);
  EXPECT_EQ(LoadLittleEndian<uint64_t>(out.data() + 7), 0x0708090A0B0C0D0Eull);
}

TEST(LittleEndianTest, ExtremesRoundTripAtAnyAlignment) {
  for (const uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000000ull},
                               UINT64_MAX, uint64_t{0xFF00FF00FF00FF00ull}}) {
    for (size_t offset = 0; offset < 8; ++offset) {
      std::string out(offset, 'x');
      AppendLittleEndian<uint64_t>(value, &out);
      ASSERT_EQ(out.size(), offset + 8);
      EXPECT_EQ(LoadLittleEndian<uint64_t>(out.data() + offset), value) << offset;
      EXPECT_EQ(LoadLittleEndian<uint32_t>(out.data() + offset), static_cast<uint32_t>(value));
    }
  }
}

}  // namespace
}  // namespace trident::io
