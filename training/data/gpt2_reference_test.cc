// The C++ GPT-2 tokenizer (PCRE2 pre-tokenizer + BPE) against the reference:
// the npm package gpt-3-encoder's Encoder.js, run by node on the same text.
// The text (testdata/multilingual.txt) mixes scripts (Latin with precomposed
// and combining accents, Cyrillic, Greek, CJK, Hangul, Arabic, Hebrew,
// Devanagari, Thai), emoji (skin tones, ZWJ families, flags), digits of other
// scripts, contractions and runs of spaces, tabs and newlines.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/io/file_util.h"
#include "gtest/gtest.h"
#include "training/data/gpt2_bpe_tokenizer.h"
#include "training/data/test_util.h"

namespace trident::data {
namespace {

constexpr char kText[] = "training/data/testdata/multilingual.txt";
constexpr char kScript[] = "training/data/testdata/gpt2_encode.js";

// Runs `command` through the shell; its standard output, or nullopt when it
// cannot start or exits non-zero.
std::optional<std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  if (pclose(pipe) != 0) return std::nullopt;
  return output;
}

TEST(Gpt2ReferenceTest, MultilingualTextEncodesAsTheNpmEncoderDoes) {
  const std::optional<std::string> dir = testing::FindGpt2Dir();
  if (!dir.has_value() || !std::filesystem::exists(*dir + "/Encoder.js")) {
    GTEST_SKIP() << "data/gpt2/{encoder.json,vocab.bpe,Encoder.js} not found: run "
                    "tools/fetch_gpt2_bpe.sh (./bazelw does) or set TRIDENT_GPT2_DIR";
  }
  ASSERT_TRUE(RunCommand("node --version >/dev/null 2>&1").has_value())
      << "node is needed for the reference encoder (Debian package nodejs; ./bazelw installs it)";
  const std::optional<std::string> reference = RunCommand(absl::StrCat(
      "node ", kScript, " '", std::filesystem::absolute(*dir).string(), "' ", kText));
  ASSERT_TRUE(reference.has_value()) << "node " << kScript << " failed";
  std::vector<int32_t> expected;
  for (absl::string_view id :
       absl::StrSplit(absl::StripTrailingAsciiWhitespace(*reference), ' ', absl::SkipEmpty())) {
    int32_t value = 0;
    ASSERT_TRUE(absl::SimpleAtoi(id, &value)) << id;
    expected.push_back(value);
  }

  const absl::StatusOr<std::string> text = io::ReadFileToString(kText);
  ASSERT_TRUE(text.ok()) << text.status();
  auto tokenizer = Gpt2BpeTokenizer::LoadFromDirectory(*dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<int32_t> ids = (*tokenizer)->Encode(*text);
  ASSERT_GT(expected.size(), 500u);
  size_t first = 0;
  while (first < ids.size() && first < expected.size() && ids[first] == expected[first]) ++first;
  EXPECT_EQ(ids, expected) << "first difference at token " << first;
  EXPECT_EQ((*tokenizer)->Decode(ids).value_or(""), *text);
}

}  // namespace
}  // namespace trident::data
