#include "training/data/json_strings.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

absl::StatusOr<std::string> ParseWhole(absl::string_view literal) {
  size_t pos = 0;
  auto value = ParseJsonString(literal, &pos);
  if (value.ok() && pos != literal.size()) return absl::InternalError("did not consume all");
  return value;
}

TEST(JsonStringsTest, DecodesEveryEscape) {
  EXPECT_EQ(*ParseWhole(R"("a\"b\\c\/d\be\ff\ng\rh\ti")"), "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(*ParseWhole(R"("")"), "");
  // \u escapes become UTF-8: 1, 2 and 3 bytes.
  EXPECT_EQ(*ParseWhole(R"("\u0041\u00e9\u20AC")"), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(*ParseWhole(R"("\u0000")"), std::string(1, '\0'));
  // GPT-2's byte alphabet: U+0120 is the space byte's symbol.
  EXPECT_EQ(*ParseWhole(R"("\u0120the")"), "\xC4\xA0the");
}

TEST(JsonStringsTest, JoinsSurrogatePairs) {
  // U+1F389 PARTY POPPER as a UTF-16 pair.
  EXPECT_EQ(*ParseWhole(R"("\ud83c\udf89")"), "\xF0\x9F\x8E\x89");
  // U+10FFFF, the last code point.
  EXPECT_EQ(*ParseWhole(R"("\uDBFF\uDFFF")"), "\xF4\x8F\xBF\xBF");
}

TEST(JsonStringsTest, PassesRawUtf8Through) {
  EXPECT_EQ(*ParseWhole("\"caf\xC3\xA9\""), "caf\xC3\xA9");
}

TEST(JsonStringsTest, RefusesMalformedStrings) {
  EXPECT_THAT(ParseWhole(R"("abc)").status().message(), HasSubstr("unterminated string"));
  EXPECT_THAT(ParseWhole(R"("\q")").status().message(), HasSubstr("unknown escape '\\q'"));
  EXPECT_THAT(ParseWhole(R"("\u12G4")").status().message(), HasSubstr("not a hex digit"));
  EXPECT_THAT(ParseWhole(R"("\u12")").status().message(), HasSubstr("4 hex digits"));
  EXPECT_THAT(ParseWhole(R"("\udf89")").status().message(), HasSubstr("low surrogate"));
  EXPECT_THAT(ParseWhole(R"("\ud83cx")").status().message(), HasSubstr("high surrogate"));
  EXPECT_THAT(ParseWhole(R"("\ud83c\u0041")").status().message(), HasSubstr("high surrogate"));
  EXPECT_THAT(ParseWhole("\"a\nb\"").status().message(), HasSubstr("control character 0x0a"));
  EXPECT_THAT(ParseWhole("abc").status().message(), HasSubstr("expected '\"'"));
}

TEST(JsonStringsTest, ParsesFlatObjectOfIntegersInOrder) {
  auto members = ParseJsonObjectOfInts(
      " {\"!\": 0, \"\\u0120the\":262 ,\"neg\" : -5,\n\"big\": 9223372036854775807}\n");
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_THAT(*members, ElementsAre(Pair("!", 0), Pair("\xC4\xA0the", 262), Pair("neg", -5),
                                    Pair("big", 9223372036854775807)));
  EXPECT_TRUE(ParseJsonObjectOfInts("{}")->empty());
  // Duplicates are the caller's business.
  EXPECT_EQ(ParseJsonObjectOfInts(R"({"a": 1, "a": 2})")->size(), 2u);
}

TEST(JsonStringsTest, RefusesMalformedObjects) {
  const auto error = [](absl::string_view text) {
    return std::string(ParseJsonObjectOfInts(text).status().message());
  };
  EXPECT_THAT(error(""), HasSubstr("expected '{'"));
  EXPECT_THAT(error(R"({"a" 1})"), HasSubstr("expected ':'"));
  EXPECT_THAT(error(R"({"a": 1 "b": 2})"), HasSubstr("expected ',' or '}'"));
  EXPECT_THAT(error(R"({"a": 1.5})"), HasSubstr("fraction or exponent"));
  EXPECT_THAT(error(R"({"a": "x"})"), HasSubstr("expected an integer"));
  EXPECT_THAT(error(R"({"a": 012})"), HasSubstr("leading zeros"));
  EXPECT_THAT(error(R"({"a": 9223372036854775808})"), HasSubstr("64-bit range"));
  EXPECT_THAT(error(R"({"a": 1,})"), HasSubstr("expected '\"'"));
  EXPECT_THAT(error(R"({"a": 1} x)"), HasSubstr("unexpected content after the object"));
  EXPECT_THAT(error(R"({"a": 1)"), HasSubstr("expected ',' or '}'"));
  // Errors say where.
  EXPECT_THAT(error(R"({"a": 1, "b" 2})"), HasSubstr("at byte 13"));
}

}  // namespace
}  // namespace trident::data
