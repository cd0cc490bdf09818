#include "training/data/byte_tokenizer.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/data/tokenizer_factory.h"

namespace trident::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ByteTokenizerTest, EachByteIsItsOwnToken) {
  ByteTokenizer tokenizer;
  EXPECT_EQ(tokenizer.vocab_size(), 256);
  EXPECT_EQ(tokenizer.name(), "byte");
  EXPECT_FALSE(tokenizer.end_of_text_id().has_value());
  EXPECT_THAT(tokenizer.Encode("Hi\n\xC3\xA9"), ElementsAre(72, 105, 10, 0xC3, 0xA9));
  EXPECT_TRUE(tokenizer.Encode("").empty());
}

TEST(ByteTokenizerTest, RoundTripsEveryByteExactly) {
  ByteTokenizer tokenizer;
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const std::string text = all_bytes + "caf\xC3\xA9 \xF0\x9F\x8E\x89" + all_bytes;
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 256);
  EXPECT_EQ(*tokenizer.Decode(ids), text);
}

TEST(ByteTokenizerTest, DecodeRefusesIdsOutsideTheVocabulary) {
  ByteTokenizer tokenizer;
  const std::vector<int32_t> too_big = {65, 66, 256};
  absl::StatusOr<std::string> text = tokenizer.Decode(too_big);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(text.status().message(), HasSubstr("token 256 at position 2"));
  const std::vector<int32_t> negative = {-1};
  EXPECT_THAT(tokenizer.Decode(negative).status().message(), HasSubstr("token -1 at position 0"));
}

TEST(TokenizerFactoryTest, MakesByNameAndRefusesUnknownNames) {
  auto byte = MakeTokenizer("byte", "");
  ASSERT_TRUE(byte.ok()) << byte.status();
  EXPECT_EQ((*byte)->name(), "byte");

  auto unknown = MakeTokenizer("sentencepiece", "");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("tokenizer \"sentencepiece\" is not one of: byte, gpt2"));

  // gpt2 without its files names the missing file and how to get it.
  auto gpt2 = MakeTokenizer("gpt2", "/nonexistent/gpt2");
  EXPECT_EQ(gpt2.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(gpt2.status().message(), HasSubstr("/nonexistent/gpt2/encoder.json"));
  EXPECT_THAT(gpt2.status().message(), HasSubstr("No such file or directory"));
  EXPECT_THAT(gpt2.status().message(), HasSubstr("tools/fetch_gpt2_bpe.sh"));
}

}  // namespace
}  // namespace trident::data
