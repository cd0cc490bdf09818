#include "training/checkpoint/json.h"

#include <string>

#include "gtest/gtest.h"

namespace trident::checkpoint {
namespace {

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

TEST(JsonTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
}

}  // namespace
}  // namespace trident::checkpoint
