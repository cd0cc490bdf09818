#include "core/io/json_parse.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseJsonDocumentTest, KeepsMemberOrderAndValues) {
  const auto value = ParseJsonDocument(R"( {"z": [1, 2.5, "\u00e9\ud83d\ude00"], "a": null} )");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->dump(), "{\"z\":[1,2.5,\"\xc3\xa9\xf0\x9f\x98\x80\"],\"a\":null}");
  EXPECT_EQ(JsonTypeName((*value)["a"]), "null");
}

TEST(ParseJsonDocumentTest, ErrorsNameTheByteAndTheCause) {
  const auto truncated = ParseJsonDocument("{\"a\": ");
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(truncated.status().message(), HasSubstr("JSON: at byte"));
  EXPECT_THAT(ParseJsonDocument("{\"a\xff\": 1}").status().message(), HasSubstr("UTF-8"));
  EXPECT_THAT(ParseJsonDocument(R"({"x": {"a": 1, "a": 2}})").status().message(),
              HasSubstr("key \"a\" appears twice"));
  // The same key in two different objects is fine.
  EXPECT_TRUE(ParseJsonDocument(R"({"a": {"a": 1}, "b": {"a": 2}})").ok());
}

TEST(ParseJsonObjectOfIntsTest, ReadsMembersInOrderWithDuplicates) {
  const auto members = ParseJsonObjectOfInts(R"({"b": 1, "\u0120a": -2, "b": 3})");
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_THAT(*members, ElementsAre(Pair("b", 1), Pair("\xc4\xa0" "a", -2), Pair("b", 3)));
}

TEST(ParseJsonObjectOfIntsTest, RefusesOtherShapes) {
  EXPECT_THAT(ParseJsonObjectOfInts(R"({"a": 1.5})").status().message(),
              HasSubstr("the value of \"a\" is the number 1.5"));
  EXPECT_THAT(ParseJsonObjectOfInts(R"({"a": "x"})").status().message(),
              HasSubstr("the value of \"a\" is a string"));
  EXPECT_THAT(ParseJsonObjectOfInts("[1]").status().message(),
              HasSubstr("the document is an array"));
  EXPECT_THAT(ParseJsonObjectOfInts(R"({"a": 1)").status().message(),
              HasSubstr("JSON: at byte"));
}

}  // namespace
}  // namespace trident::io
