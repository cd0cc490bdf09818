#include "core/io/utf8.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace trident::io {
namespace {

std::string Encode(uint32_t code_point) {
  std::string out;
  AppendUtf8(code_point, &out);
  return out;
}

TEST(Utf8Test, EncodesEveryLengthAtItsBoundaries) {
  EXPECT_EQ(Encode(0x00), std::string(1, '\0'));
  EXPECT_EQ(Encode(0x41), "A");
  EXPECT_EQ(Encode(0x7F), "\x7F");
  EXPECT_EQ(Encode(0x80), "\xC2\x80");
  EXPECT_EQ(Encode(0xE9), "\xC3\xA9");
  EXPECT_EQ(Encode(0x120), "\xC4\xA0");  // GPT-2's symbol for the space byte
  EXPECT_EQ(Encode(0x7FF), "\xDF\xBF");
  EXPECT_EQ(Encode(0x800), "\xE0\xA0\x80");
  EXPECT_EQ(Encode(0x20AC), "\xE2\x82\xAC");
  EXPECT_EQ(Encode(0xFFFF), "\xEF\xBF\xBF");
  EXPECT_EQ(Encode(0x10000), "\xF0\x90\x80\x80");
  EXPECT_EQ(Encode(0x1F600), "\xF0\x9F\x98\x80");
  EXPECT_EQ(Encode(0x10FFFF), "\xF4\x8F\xBF\xBF");
}

TEST(Utf8DeathTest, RefusesToEncodeWhatIsNotAScalarValue) {
  EXPECT_DEATH(Encode(0xD800), "not a Unicode scalar value");
  EXPECT_DEATH(Encode(0x110000), "not a Unicode scalar value");
}

TEST(Utf8Test, EveryEncodedScalarValueValidates) {
  std::string all;
  for (uint32_t code_point = 0; code_point <= 0x10FFFF; code_point += 0x3F) {
    if (code_point >= 0xD800 && code_point <= 0xDFFF) continue;
    const std::string one = Encode(code_point);
    ASSERT_TRUE(IsValidUtf8(one)) << std::hex << code_point;
    all += one;
  }
  EXPECT_TRUE(IsValidUtf8(all));
}

TEST(Utf8Test, Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));              // continuation without a lead
  EXPECT_FALSE(IsValidUtf8("\xff"));              // never in UTF-8
  EXPECT_FALSE(IsValidUtf8("a\xc3(b"));           // lead followed by a non-continuation
}

}  // namespace
}  // namespace trident::io
