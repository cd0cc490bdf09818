#include "core/io/json.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// --- ParseJson: the tree. -----------------------------------------------------

TEST(JsonTest, ParsesNestedDocument) {
  const absl::StatusOr<JsonValue> json = ParseJson(
      R"( {"a": [1, -2, 3.5e2, true, false, null], "b": {"c": "d\n\u00e9\ud83d\ude00"}, "e": []} )");
  ASSERT_TRUE(json.ok()) << json.status();
  ASSERT_TRUE(json->is_object());
  ASSERT_EQ(json->members().size(), 3u);
  EXPECT_EQ(json->members()[0].first, "a");  // order kept
  const JsonValue* a = json->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 6u);
  EXPECT_EQ(*a->items()[0].AsInt64("x"), 1);
  EXPECT_EQ(*a->items()[1].AsInt64("x"), -2);
  EXPECT_EQ(a->items()[2].number_literal(), "3.5e2");
  EXPECT_FALSE(a->items()[2].AsInt64("x").ok());  // not an integer literal
  EXPECT_TRUE(a->items()[3].bool_value());
  EXPECT_EQ(a->items()[4].kind(), JsonValue::Kind::kBool);
  EXPECT_FALSE(a->items()[4].bool_value());
  EXPECT_EQ(a->items()[5].kind(), JsonValue::Kind::kNull);
  EXPECT_EQ(json->Find("b")->Find("c")->string_value(), "d\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(json->Find("e")->items().empty());
  EXPECT_EQ(json->Find("zzz"), nullptr);
}

TEST(JsonTest, IntegersAreExactOver64Bits) {
  const absl::StatusOr<JsonValue> json =
      ParseJson("[9223372036854775807, -9223372036854775808, 18446744073709551615, "
                "9223372036854775808, 18446744073709551616, -1]");
  ASSERT_TRUE(json.ok()) << json.status();
  const auto& items = json->items();
  EXPECT_EQ(*items[0].AsInt64("v"), INT64_MAX);
  EXPECT_EQ(*items[1].AsInt64("v"), INT64_MIN);
  EXPECT_EQ(*items[2].AsUint64("v"), UINT64_MAX);
  EXPECT_FALSE(items[3].AsInt64("v").ok());
  EXPECT_EQ(*items[3].AsUint64("v"), 9223372036854775808ull);
  EXPECT_FALSE(items[4].AsUint64("v").ok());
  EXPECT_FALSE(items[5].AsUint64("v").ok());
  const absl::Status error = items[5].AsUint64("field \"seed\"").status();
  EXPECT_NE(error.message().find("field \"seed\""), std::string::npos) << error;
}

TEST(JsonTest, RejectsMalformedInput) {
  for (const char* bad : {"", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-",
                          "1e", "\"abc", "\"\\x\"", "\"a\nb\"", "tru", "[1] [2]", "{a:1}",
                          "\"\\ud800\"", "\"\\udc00\"", "\"\\u12g4\"", "\xff", "\"\xc0\xaf\""}) {
    EXPECT_FALSE(ParseJson(bad).ok()) << "accepted: " << bad;
  }
}

TEST(JsonTest, ErrorNamesOffset) {
  const absl::Status status = ParseJson("[1, 2 x]").status();
  EXPECT_NE(status.message().find("byte 6"), std::string::npos) << status;
}

TEST(JsonTest, RejectsDuplicateKeys) {
  const absl::Status status = ParseJson(R"({"w": 1, "w": 2})").status();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("\"w\" appears twice"), std::string::npos) << status;
}

TEST(JsonTest, RejectsExcessiveNesting) {
  EXPECT_TRUE(ParseJson(std::string(60, '[') + std::string(60, ']')).ok());
  EXPECT_FALSE(ParseJson(std::string(100, '[') + std::string(100, ']')).ok());
}

TEST(JsonTest, EscapesLikeSerdeJsonAndRoundTrips) {
  std::string out;
  AppendJsonString("a\"b\\c\n\t\x01\x1f/\xc3\xa9\x7f", &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f/\xc3\xa9\x7f\"");
  const absl::StatusOr<JsonValue> back = ParseJson(out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->string_value(), "a\"b\\c\n\t\x01\x1f/\xc3\xa9\x7f");
}

TEST(JsonTest, RefusesLeadingZerosAndSaysWhere) {
  const absl::Status status = ParseJson("[1, 012]").status();
  EXPECT_THAT(status.message(), HasSubstr("at byte 4: a number must not have leading zeros"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

// --- ParseJsonString: one string literal inside other text. -------------------

absl::StatusOr<std::string> ParseWhole(absl::string_view literal) {
  size_t pos = 0;
  auto value = ParseJsonString(literal, &pos);
  if (value.ok() && pos != literal.size()) return absl::InternalError("did not consume all");
  return value;
}

TEST(JsonStringTest, DecodesEveryEscape) {
  EXPECT_EQ(*ParseWhole(R"("a\"b\\c\/d\be\ff\ng\rh\ti")"), "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(*ParseWhole(R"("")"), "");
  // \u escapes become UTF-8: 1, 2 and 3 bytes.
  EXPECT_EQ(*ParseWhole(R"("\u0041\u00e9\u20AC")"), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(*ParseWhole(R"("\u0000")"), std::string(1, '\0'));
  // GPT-2's byte alphabet: U+0120 is the space byte's symbol.
  EXPECT_EQ(*ParseWhole(R"("\u0120the")"), "\xC4\xA0the");
}

TEST(JsonStringTest, JoinsSurrogatePairs) {
  // U+1F389 PARTY POPPER as a UTF-16 pair.
  EXPECT_EQ(*ParseWhole(R"("\ud83c\udf89")"), "\xF0\x9F\x8E\x89");
  // U+10FFFF, the last code point.
  EXPECT_EQ(*ParseWhole(R"("\uDBFF\uDFFF")"), "\xF4\x8F\xBF\xBF");
}

TEST(JsonStringTest, PassesRawUtf8Through) {
  EXPECT_EQ(*ParseWhole("\"caf\xC3\xA9\""), "caf\xC3\xA9");
}

TEST(JsonStringTest, StopsAfterTheClosingQuote) {
  const std::string line = "x\"a\\tb\"\t1 2";
  size_t pos = 1;
  EXPECT_EQ(*ParseJsonString(line, &pos), "a\tb");
  EXPECT_EQ(pos, 7u);
}

TEST(JsonStringTest, RefusesMalformedStrings) {
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

TEST(JsonStringTest, TreeAndStringParserDecodeAlike) {
  // One scanner serves both: the same literal gives the same value either way.
  for (const char* literal : {R"("plain")", R"("\u0120\ud83d\ude00\n\"")", "\"caf\xC3\xA9\""}) {
    const absl::StatusOr<JsonValue> tree = ParseJson(literal);
    ASSERT_TRUE(tree.ok()) << tree.status();
    EXPECT_EQ(tree->string_value(), *ParseWhole(literal)) << literal;
  }
}

// --- ParseJsonObjectOfInts: encoder.json's flat object. -----------------------

TEST(JsonObjectOfIntsTest, ParsesFlatObjectOfIntegersInOrder) {
  auto members = ParseJsonObjectOfInts(
      " {\"!\": 0, \"\\u0120the\":262 ,\"neg\" : -5,\n\"big\": 9223372036854775807}\n");
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_THAT(*members, ElementsAre(Pair("!", 0), Pair("\xC4\xA0the", 262), Pair("neg", -5),
                                    Pair("big", 9223372036854775807)));
  EXPECT_TRUE(ParseJsonObjectOfInts("{}")->empty());
  // Duplicates are the caller's business.
  EXPECT_EQ(ParseJsonObjectOfInts(R"({"a": 1, "a": 2})")->size(), 2u);
}

TEST(JsonObjectOfIntsTest, RefusesMalformedObjects) {
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
}  // namespace trident::io
