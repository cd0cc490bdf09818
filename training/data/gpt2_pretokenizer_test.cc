#include "training/data/gpt2_pretokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::data {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Split(absl::string_view text) {
  std::vector<std::string> words;
  for (absl::string_view word : SplitGpt2Words(text)) words.emplace_back(word);
  return words;
}

TEST(Gpt2PretokenizerTest, LettersNumbersAndSymbolsTakeOneLeadingSpace) {
  EXPECT_THAT(Split("Hello world, 42 times!"),
              ElementsAre("Hello", " world", ",", " 42", " times", "!"));
  EXPECT_THAT(Split("abc123def"), ElementsAre("abc", "123", "def"));
  EXPECT_THAT(Split("a ... b"), ElementsAre("a", " ...", " b"));
  EXPECT_THAT(Split("x+=y"), ElementsAre("x", "+=", "y"));
}

TEST(Gpt2PretokenizerTest, ContractionsOnlyAtTheStartOfAPiece) {
  EXPECT_THAT(Split("don't I'm we're they've she'll he'd it's"),
              ElementsAre("don", "'t", " I", "'m", " we", "'re", " they", "'ve", " she", "'ll",
                          " he", "'d", " it", "'s"));
  // Upper case is not a contraction; the apostrophe is then a symbol.
  EXPECT_THAT(Split("IT'S"), ElementsAre("IT", "'", "S"));
  // Inside a symbol run the apostrophe stays in the run.
  EXPECT_THAT(Split("!'s"), ElementsAre("!'", "s"));
  // A space before an apostrophe joins the symbol run, not a contraction.
  EXPECT_THAT(Split("a 's"), ElementsAre("a", " '", "s"));
  EXPECT_THAT(Split("'x"), ElementsAre("'", "x"));
}

TEST(Gpt2PretokenizerTest, WhitespaceRunsLeaveTheirLastCharacterToTheNextWord) {
  EXPECT_THAT(Split("a  b"), ElementsAre("a", " ", " b"));
  EXPECT_THAT(Split("a   b"), ElementsAre("a", "  ", " b"));
  // At the end of the text the whole run is one piece.
  EXPECT_THAT(Split("a   "), ElementsAre("a", "   "));
  EXPECT_THAT(Split("   "), ElementsAre("   "));
  // A single non-space whitespace character before a word stands alone.
  EXPECT_THAT(Split("a\nb"), ElementsAre("a", "\n", "b"));
  EXPECT_THAT(Split("a\n\n\nb"), ElementsAre("a", "\n\n", "\n", "b"));
  EXPECT_THAT(Split("x\n    return"), ElementsAre("x", "\n   ", " return"));
  EXPECT_THAT(Split("a \nb"), ElementsAre("a", " ", "\n", "b"));
  EXPECT_THAT(Split("\tx"), ElementsAre("\t", "x"));
}

TEST(Gpt2PretokenizerTest, UnicodeClasses) {
  // Letters with diacritics stay in the word; CJK and Greek are letters.
  EXPECT_THAT(Split("caf\xC3\xA9 na\xC3\xAFve"), ElementsAre("caf\xC3\xA9", " na\xC3\xAFve"));
  // U+00B2 SUPERSCRIPT TWO is a number; U+2264 (less-or-equal) a symbol.
  EXPECT_THAT(Split("x\xC2\xB2 \xE2\x89\xA4 1"),
              ElementsAre("x", "\xC2\xB2", " \xE2\x89\xA4", " 1"));
  // U+00A0 NO-BREAK SPACE is whitespace, but only U+0020 joins the next word.
  EXPECT_THAT(Split("a\xC2\xA0"
                    "b"),
              ElementsAre("a", "\xC2\xA0", "b"));
  // U+3000 IDEOGRAPHIC SPACE: a multi-byte whitespace character.
  EXPECT_THAT(Split("a\xE3\x80\x80\xE3\x80\x80 b"),
              ElementsAre("a", "\xE3\x80\x80\xE3\x80\x80", " b"));

  // Combining marks are not letters: GPT-2 splits "e" + U+0301 after the "e".
  EXPECT_THAT(Split("e\xCC\x81t\xC3\xA9"), ElementsAre("e", "\xCC\x81", "t\xC3\xA9"));
  // Digits of other scripts are numbers: Arabic-Indic, Devanagari, fullwidth.
  EXPECT_THAT(Split("\xD9\xA1\xD9\xA2 \xE0\xA5\xA9 \xEF\xBC\x95"),
              ElementsAre("\xD9\xA1\xD9\xA2", " \xE0\xA5\xA9", " \xEF\xBC\x95"));
  // Cyrillic and CJK are letters; an emoji is a symbol.
  EXPECT_THAT(Split("\xD0\xB6\xE6\x97\xA5 \xF0\x9F\x8E\x89!"),
              ElementsAre("\xD0\xB6\xE6\x97\xA5", " \xF0\x9F\x8E\x89!"));
  // U+2028 LINE SEPARATOR is white space.
  EXPECT_THAT(Split("a\xE2\x80\xA8"
                    "b"),
              ElementsAre("a", "\xE2\x80\xA8", "b"));
}

TEST(Gpt2PretokenizerTest, InvalidUtf8RunsArePiecesOfTheirOwn) {
  // A lone continuation byte, a truncated sequence, an overlong encoding.
  EXPECT_THAT(Split("a\x80"
                    "b"),
              ElementsAre("a", "\x80", "b"));
  EXPECT_THAT(Split("ab\xE2\x82"), ElementsAre("ab", "\xE2\x82"));
  EXPECT_THAT(Split("\xC0\xAF"
                    "x"),
              ElementsAre("\xC0\xAF", "x"));
  // The pattern sees the invalid run as the end of its stretch of text.
  EXPECT_THAT(Split("a  \xFF b"), ElementsAre("a", "  ", "\xFF", " b"));
}

TEST(Gpt2PretokenizerTest, PiecesConcatenateToTheInputForArbitraryBytes) {
  std::mt19937 generator(11);
  const std::string alphabet = "ab 7'\n\t.\xC3\xA9\x80\xE2\x82\xAC ";
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const int length = static_cast<int>(generator() % 40);
    for (int i = 0; i < length; ++i) text.push_back(alphabet[generator() % alphabet.size()]);
    const std::vector<absl::string_view> words = SplitGpt2Words(text);
    ASSERT_EQ(absl::StrJoin(words, ""), text);
    for (absl::string_view word : words) ASSERT_FALSE(word.empty());
  }
}

}  // namespace
}  // namespace trident::data
