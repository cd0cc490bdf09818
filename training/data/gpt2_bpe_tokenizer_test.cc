#include "training/data/gpt2_bpe_tokenizer.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/io/file_util.h"
#include "core/io/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "training/data/test_util.h"
#include "training/data/tokenizer_factory.h"

namespace trident::data {

using ::trident::io::AppendUtf8;
using ::trident::io::ReadFileToString;

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bytes spelled in GPT-2's alphabet, as encoder.json and vocab.bpe spell them.
std::string Spell(absl::string_view bytes) {
  std::string spelled;
  for (unsigned char byte : bytes) AppendUtf8(ByteToUnicode(byte), &spelled);
  return spelled;
}

// A small vocabulary in the files' formats: the 256 bytes (id = byte value),
// then one token per merge, then optionally <|endoftext|>. Keys are written
// with \u escapes for non-ASCII, as OpenAI's encoder.json does.
struct SyntheticVocab {
  std::vector<std::pair<std::string, std::string>> merges;  // Raw bytes.
  bool end_of_text = false;

  std::string EncoderJson() const {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, static_cast<char>(b)));
    for (const auto& [left, right] : merges) {
      if (std::find(tokens.begin(), tokens.end(), left + right) == tokens.end()) {
        tokens.push_back(left + right);
      }
    }
    if (end_of_text) tokens.push_back("<|endoftext|>");
    std::vector<std::string> members;
    for (size_t id = 0; id < tokens.size(); ++id) {
      std::string key;
      for (unsigned char byte : tokens[id]) {
        const uint32_t code_point = ByteToUnicode(byte);
        if (code_point == '"' || code_point == '\\') {
          key += absl::StrCat("\\", std::string(1, static_cast<char>(code_point)));
        } else if (code_point < 0x80) {
          key.push_back(static_cast<char>(code_point));
        } else {
          key += absl::StrFormat("\\u%04x", code_point);
        }
      }
      members.push_back(absl::StrCat("\"", key, "\": ", id));
    }
    return absl::StrCat("{", absl::StrJoin(members, ", "), "}");
  }

  std::string VocabBpe() const {
    std::string text = "#version: 0.2\n";
    for (const auto& [left, right] : merges) {
      absl::StrAppend(&text, Spell(left), " ", Spell(right), "\n");
    }
    return text;
  }

  std::unique_ptr<Gpt2BpeTokenizer> Load() const {
    auto tokenizer = Gpt2BpeTokenizer::FromContents(EncoderJson(), VocabBpe(), "synthetic");
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
  }
};

// encoder.py's bpe(), on strings, written out plainly: the reference for the
// heap-based merge loop.
std::vector<std::string> ReferenceBpe(
    const std::string& word, const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> symbols;
  for (char c : word) symbols.push_back(std::string(1, c));
  while (symbols.size() > 1) {
    int best_rank = -1;
    std::pair<std::string, std::string> best;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ranks.find({symbols[i], symbols[i + 1]});
      if (it != ranks.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = it->first;
      }
    }
    if (best_rank < 0) break;
    std::vector<std::string> merged;
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
        merged.push_back(best.first + best.second);
        i += 2;
      } else {
        merged.push_back(symbols[i]);
        i += 1;
      }
    }
    symbols = std::move(merged);
  }
  return symbols;
}

TEST(ByteAlphabetTest, IsGpt2sBijection) {
  EXPECT_EQ(ByteToUnicode('!'), uint32_t{'!'});
  EXPECT_EQ(ByteToUnicode('~'), uint32_t{'~'});
  EXPECT_EQ(ByteToUnicode(0xE9), 0xE9u);   // printable Latin-1 maps to itself
  EXPECT_EQ(ByteToUnicode(0x00), 0x100u);  // the rest from U+0100, in byte order
  EXPECT_EQ(ByteToUnicode('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(ByteToUnicode(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(ByteToUnicode(0xAD), 0x143u);  // soft hyphen, the last one
  std::vector<uint32_t> images;
  for (int b = 0; b < 256; ++b) images.push_back(ByteToUnicode(static_cast<uint8_t>(b)));
  std::sort(images.begin(), images.end());
  EXPECT_EQ(std::unique(images.begin(), images.end()), images.end());
}

TEST(Gpt2BpeTokenizerTest, MergesByRankNotByPosition) {
  SyntheticVocab vocab;
  vocab.merges = {{"b", "c"}, {"a", "b"}, {"a", "bc"}};
  auto tokenizer = vocab.Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->vocab_size(), 259);
  EXPECT_EQ(tokenizer->num_merges(), 3);
  // "bc" (rank 0) before "ab" (rank 1), then "a"+"bc" (rank 2): one token, 258.
  EXPECT_THAT(tokenizer->Encode("abc"), ElementsAre(258));
  // Without a "c" the "ab" merge applies.
  EXPECT_THAT(tokenizer->Encode("abd"), ElementsAre(257, 'd'));
}

TEST(Gpt2BpeTokenizerTest, MergesOccurrencesLeftToRight) {
  SyntheticVocab vocab;
  vocab.merges = {{"a", "a"}, {"aa", "aa"}};
  auto tokenizer = vocab.Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(tokenizer->Encode("a"), ElementsAre('a'));
  EXPECT_THAT(tokenizer->Encode("aaa"), ElementsAre(256, 'a'));
  EXPECT_THAT(tokenizer->Encode("aaaa"), ElementsAre(257));
  EXPECT_THAT(tokenizer->Encode("aaaaaaa"), ElementsAre(257, 256, 'a'));
}

TEST(Gpt2BpeTokenizerTest, SpaceJoinsTheWordAndEndOfTextIsFound) {
  SyntheticVocab vocab;
  vocab.merges = {{" ", "t"}, {" t", "h"}, {" th", "e"}};
  vocab.end_of_text = true;
  auto tokenizer = vocab.Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(tokenizer->Encode("the the"), ElementsAre('t', 'h', 'e', 258));
  ASSERT_TRUE(tokenizer->end_of_text_id().has_value());
  EXPECT_EQ(*tokenizer->end_of_text_id(), 259);
  // The text "<|endoftext|>" is not the special token.
  EXPECT_EQ(tokenizer->Encode("<|endoftext|>").size(), 13u);
  EXPECT_EQ(*tokenizer->Decode({259}), "<|endoftext|>");
}

TEST(Gpt2BpeTokenizerTest, HeapMergeLoopEqualsEncoderPyOnRandomVocabularies) {
  std::mt19937 generator(2024);
  for (int vocab_trial = 0; vocab_trial < 20; ++vocab_trial) {
    // Merges built by concatenating tokens that exist, like BPE training does.
    SyntheticVocab vocab;
    std::vector<std::string> tokens = {"a", "b", "c"};
    std::map<std::pair<std::string, std::string>, int> ranks;
    while (vocab.merges.size() < 30) {
      const std::string left = tokens[generator() % tokens.size()];
      const std::string right = tokens[generator() % tokens.size()];
      if (ranks.count({left, right}) > 0 || left.size() + right.size() > 8) continue;
      ranks[{left, right}] = static_cast<int>(vocab.merges.size());
      vocab.merges.emplace_back(left, right);
      if (std::find(tokens.begin(), tokens.end(), left + right) == tokens.end()) {
        tokens.push_back(left + right);
      }
    }
    auto tokenizer = vocab.Load();
    ASSERT_NE(tokenizer, nullptr);
    for (int word_trial = 0; word_trial < 200; ++word_trial) {
      std::string word;
      const int length = 1 + static_cast<int>(generator() % 16);
      for (int i = 0; i < length; ++i) word.push_back("abc"[generator() % 3]);
      std::string expected;
      for (const std::string& symbol : ReferenceBpe(word, ranks)) expected += symbol + "|";
      std::string actual;
      for (int32_t id : tokenizer->Encode(word)) actual += *tokenizer->Decode({id}) + "|";
      ASSERT_EQ(actual, expected) << "word " << word << " vocabulary " << vocab_trial;
    }
  }
}

TEST(Gpt2BpeTokenizerTest, RefusesBrokenFiles) {
  const auto load_error = [](const std::string& encoder_json, const std::string& vocab_bpe) {
    auto tokenizer = Gpt2BpeTokenizer::FromContents(encoder_json, vocab_bpe, "dir");
    EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(tokenizer.status().message());
  };
  SyntheticVocab good;
  good.merges = {{"a", "b"}};
  const std::string json = good.EncoderJson();  // 257 tokens, "ab" is 256.

  EXPECT_THAT(load_error("{\"a\": 0", ""), HasSubstr("dir: encoder.json: JSON: at byte"));
  EXPECT_THAT(load_error("{}", ""), HasSubstr("the vocabulary is empty"));
  // Byte 0x00 (spelled U+0100) missing: its id goes to another token.
  std::string no_nul = json;
  no_nul.replace(no_nul.find("\"\\u0100\": 0, "), 13, "\"zz\": 0, ");
  EXPECT_THAT(load_error(no_nul, ""), HasSubstr("no token for the single byte 0x00"));
  // A raw space is not in the alphabet (the space byte is spelled U+0120).
  EXPECT_THAT(load_error(R"({"a b": 0})", ""),
              HasSubstr("token \"a b\" (id 0): character U+0020 at offset 1 is not in GPT-2's"));
  EXPECT_THAT(load_error(R"({"a": 0, "b": 0})", ""), HasSubstr("id 0 is given to two tokens"));
  EXPECT_THAT(load_error(R"({"a": 0, "b": 7})", ""), HasSubstr("has id 7, outside [0, 2)"));
  EXPECT_THAT(load_error(R"({"a": 0, "a": 1})", ""), HasSubstr("token \"a\" appears twice"));

  EXPECT_THAT(load_error(json, "#version: 0.2\na b c\n"),
              HasSubstr("vocab.bpe: line 2 (\"a b c\") is not two tokens"));
  EXPECT_THAT(load_error(json, "#version: 0.2\nab ab\n"),
              HasSubstr("line 2: the merge of \"ab\" and \"ab\" is not a token"));
  EXPECT_THAT(load_error(json, "#version: 0.2\nxyz a\n"),
              HasSubstr("line 2: token \"xyz\" is not in encoder.json"));
  EXPECT_THAT(load_error(json, "#version: 0.2\na b\na b\n"),
              HasSubstr("line 3: the merge \"a b\" is listed twice"));
}

TEST(Gpt2BpeTokenizerTest, DecodeRefusesIdsOutsideTheVocabulary) {
  SyntheticVocab vocab;
  auto tokenizer = vocab.Load();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(tokenizer->Decode({1, 256}).status().message(),
              HasSubstr("token 256 at position 1 is outside the vocabulary [0, 256)"));
}

// --- Against OpenAI's vocabulary and the reference encoder's output.

struct Fixture {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Fixture> ReadFixtures() {
  auto contents = ReadFileToString("training/data/testdata/gpt2_bpe_fixtures.tsv");
  EXPECT_TRUE(contents.ok()) << contents.status();
  std::vector<Fixture> fixtures;
  for (absl::string_view line : absl::StrSplit(*contents, '\n', absl::SkipEmpty())) {
    // A JSON string literal (a tab inside it is escaped), a tab, the ids.
    const size_t pos = line.find('\t');
    const nlohmann::json text =
        nlohmann::json::parse(std::string(line.substr(0, pos)), nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(pos != absl::string_view::npos && text.is_string()) << line;
    if (pos == absl::string_view::npos || !text.is_string()) continue;
    Fixture fixture{text.get<std::string>(), {}};
    for (absl::string_view id : absl::StrSplit(line.substr(pos + 1), ' ', absl::SkipEmpty())) {
      int32_t value;
      EXPECT_TRUE(absl::SimpleAtoi(id, &value)) << id;
      fixture.ids.push_back(value);
    }
    fixtures.push_back(std::move(fixture));
  }
  return fixtures;
}

class RealGpt2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::optional<std::string> dir = testing::FindGpt2Dir();
    if (!dir.has_value()) return;
    auto loaded = Gpt2BpeTokenizer::LoadFromDirectory(*dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = loaded->release();
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr) {
      GTEST_SKIP() << "GPT-2 BPE files not found: run tools/fetch_gpt2_bpe.sh (writes "
                      "data/gpt2/encoder.json and vocab.bpe) or set TRIDENT_GPT2_DIR";
    }
  }
  static Gpt2BpeTokenizer* tokenizer_;
};

Gpt2BpeTokenizer* RealGpt2Test::tokenizer_ = nullptr;

TEST_F(RealGpt2Test, LoadsOpenAisVocabulary) {
  EXPECT_EQ(tokenizer_->vocab_size(), 50257);
  EXPECT_EQ(tokenizer_->num_merges(), 50000);
  EXPECT_EQ(tokenizer_->end_of_text_id(), std::optional<int32_t>(50256));
  EXPECT_EQ(tokenizer_->name(), "gpt2");
}

TEST_F(RealGpt2Test, MatchesTheReferenceEncoderOnFixtures) {
  const std::vector<Fixture> fixtures = ReadFixtures();
  ASSERT_GE(fixtures.size(), 10u);
  for (const Fixture& fixture : fixtures) {
    EXPECT_EQ(tokenizer_->Encode(fixture.text), fixture.ids) << "text: " << fixture.text;
    EXPECT_EQ(*tokenizer_->Decode(fixture.ids), fixture.text);
  }
}

TEST_F(RealGpt2Test, RoundTripsAnyBytes) {
  std::vector<std::string> texts;
  for (const Fixture& fixture : ReadFixtures()) texts.push_back(fixture.text);
  texts.push_back(std::string("\xFF\xFE invalid \x80 UTF-8 \xE2\x82 and a NUL ") + '\0' + " byte");
  std::mt19937 generator(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::string text;
    for (int i = 0; i < 200; ++i) text.push_back(static_cast<char>(generator()));
    texts.push_back(text);
  }
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tokenizer_->Encode(text);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 50256) << id;
    EXPECT_EQ(*tokenizer_->Decode(ids), text);
  }
}

TEST_F(RealGpt2Test, FactoryLoadsItByName) {
  auto tokenizer = MakeTokenizer("gpt2", *testing::FindGpt2Dir());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 50257);
}

}  // namespace
}  // namespace trident::data
