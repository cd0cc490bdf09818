#include "training/data/prepare_data.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/data/byte_tokenizer.h"
#include "training/data/test_util.h"
#include "training/data/token_file.h"

namespace trident::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempPath;
using testing::WriteBytes;

std::string DecodeFile(const std::string& path) {
  auto file = TokenFile::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  std::vector<int32_t> tokens(file->size());
  EXPECT_TRUE(file->CopyTokens(0, absl::MakeSpan(tokens)).ok());
  return *ByteTokenizer().Decode(tokens);
}

TEST(SplitTest, DocumentsAreRunsOfNonBlankLines) {
  EXPECT_THAT(SplitDocuments("a\nb\n\nc\n \t\n\n\nd e\nf"), ElementsAre("a\nb", "c", "d e\nf"));
  EXPECT_THAT(SplitDocuments("\n\nonly\n"), ElementsAre("only"));
  EXPECT_TRUE(SplitDocuments("\n \n").empty());
  EXPECT_THAT(SplitDocuments("x\r\n\r\ny\r\n"), ElementsAre("x\r", "y\r"));
  EXPECT_THAT(SplitNonBlankLines("a\nb\n\n c\n"), ElementsAre("a", "b", " c"));
}

TEST(SplitTest, EveryTwentiethUnitIsValidationAtFivePercent) {
  std::vector<int64_t> chosen;
  for (int64_t i = 0; i < 500; ++i) {
    if (IsValidationUnit(i, 0.05)) chosen.push_back(i);
  }
  ASSERT_EQ(chosen.size(), 25u);
  for (size_t k = 0; k < chosen.size(); ++k) EXPECT_EQ(chosen[k], 20 * k + 19);
  // Other fractions pick exactly floor(n * f).
  for (double f : {0.0, 0.1, 0.25, 1.0 / 3, 0.5, 0.9}) {
    int64_t count = 0;
    for (int64_t i = 0; i < 1000; ++i) count += IsValidationUnit(i, f);
    EXPECT_EQ(count, static_cast<int64_t>(1000 * f)) << f;
  }
}

TEST(PrepareDataTest, SplitsDocumentsIntoTrainAndValidationFiles) {
  // 10 documents; at val_fraction 0.2 documents 4 and 9 are validation.
  std::string text;
  for (int d = 0; d < 10; ++d) absl::StrAppend(&text, "Document ", d, " line one.\nline two\n\n");
  const std::string input = TempPath("corpus.txt");
  WriteBytes(input, text);
  PrepareDataOptions options;
  options.input = input;
  options.output_dir = TempPath("out/nested");  // created on demand
  options.val_fraction = 0.2;
  auto result = PrepareData(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->split_unit, "document");
  EXPECT_EQ(result->train_units, 8);
  EXPECT_EQ(result->val_units, 2);
  EXPECT_EQ(result->tokenizer, "byte");
  EXPECT_EQ(result->vocab_size, 256);
  EXPECT_EQ(result->input_bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(result->train_path, TrainTokenPath(options.output_dir));
  EXPECT_TRUE(PreparedDataExists(options.output_dir));

  std::string expected_train, expected_val;
  for (int d = 0; d < 10; ++d) {
    absl::StrAppend(d == 4 || d == 9 ? &expected_val : &expected_train, "Document ", d,
                    " line one.\nline two\n\n");
  }
  EXPECT_EQ(DecodeFile(result->train_path), expected_train);
  EXPECT_EQ(DecodeFile(result->val_path), expected_val);
  EXPECT_EQ(result->train_tokens, static_cast<int64_t>(expected_train.size()));
  EXPECT_EQ(result->val_tokens, static_cast<int64_t>(expected_val.size()));
}

TEST(PrepareDataTest, FallsBackToLinesWhenThereAreTooFewDocuments) {
  std::string text;
  for (int line = 0; line < 40; ++line) absl::StrAppend(&text, "line ", line, "\n");
  const std::string input = TempPath("one_document.txt");
  WriteBytes(input, text);
  PrepareDataOptions options;
  options.input = input;
  options.output_dir = TempPath("out");
  auto result = PrepareData(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->split_unit, "line");
  EXPECT_EQ(result->val_units, 2);  // lines 19 and 39
  EXPECT_EQ(DecodeFile(result->val_path), "line 19\nline 39\n");
  EXPECT_EQ(result->train_units, 38);
}

TEST(PrepareDataTest, ReadsADirectoryInPathOrderEachFileEndingADocument) {
  const std::string dir = TempPath("corpus_dir");
  std::filesystem::create_directories(dir + "/sub");
  std::filesystem::create_directories(dir + "/.hidden");
  WriteBytes(dir + "/b.txt", "second");
  WriteBytes(dir + "/a.txt", "first\n");
  WriteBytes(dir + "/sub/c.txt", "third\n\nfourth");
  WriteBytes(dir + "/.hidden/x.txt", "ignored");
  WriteBytes(dir + "/.dotfile", "ignored");
  PrepareDataOptions options;
  options.input = dir;
  options.output_dir = TempPath("out");
  options.val_fraction = 0.25;  // 4 documents: the last is validation
  auto result = PrepareData(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->input_files, 3);
  EXPECT_EQ(DecodeFile(result->train_path), "first\n\nsecond\n\nthird\n\n");
  EXPECT_EQ(DecodeFile(result->val_path), "fourth\n\n");
}

TEST(PrepareDataTest, ADirectoryCanHoldItsOwnTokenFiles) {
  const std::string dir = TempPath("self");
  std::filesystem::create_directories(dir);
  WriteBytes(dir + "/text.txt", "one\n\ntwo\n\nthree\n\nfour\n");
  PrepareDataOptions options;
  options.input = dir;
  options.output_dir = dir;
  options.val_fraction = 0.25;
  auto first = PrepareData(options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PrepareData(options);  // train.bin and val.bin are not read as text
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->input_files, 1);
  EXPECT_EQ(DecodeFile(second->train_path), "one\n\ntwo\n\nthree\n\n");
  EXPECT_EQ(DecodeFile(second->val_path), "four\n\n");
}

TEST(PrepareDataTest, ZeroValidationFractionWritesAnEmptyValidationFile) {
  const std::string input = TempPath("corpus.txt");
  WriteBytes(input, "just one line");
  PrepareDataOptions options;
  options.input = input;
  options.output_dir = TempPath("out");
  options.val_fraction = 0;
  auto result = PrepareData(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->val_tokens, 0);
  EXPECT_EQ(DecodeFile(result->train_path), "just one line\n\n");
}

TEST(PrepareDataTest, RefusesBadOptionsAndInputs) {
  const std::string input = TempPath("corpus.txt");
  WriteBytes(input, "a\n\nb\n");
  PrepareDataOptions options;
  options.input = input;
  options.output_dir = TempPath("out");

  options.val_fraction = 1.0;
  EXPECT_THAT(PrepareData(options).status().message(),
              HasSubstr("val_fraction 1 is outside [0, 1)"));
  options.val_fraction = -0.1;
  EXPECT_THAT(PrepareData(options).status().message(), HasSubstr("outside [0, 1)"));
  options.val_fraction = 0.05;
  EXPECT_THAT(PrepareData(options).status().message(),
              HasSubstr("val_fraction 0.05 of the 2 lines of " + input + " selects no validation"));

  options.val_fraction = 0.5;
  options.tokenizer = "words";
  EXPECT_THAT(PrepareData(options).status().message(), HasSubstr("\"words\" is not one of"));
  options.tokenizer = "byte";

  options.input = TempPath("missing.txt");
  auto missing = PrepareData(options);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(options.input));

  options.input = TempPath("blank.txt");
  WriteBytes(options.input, "\n  \n\n");
  EXPECT_THAT(PrepareData(options).status().message(), HasSubstr("has no text"));

  // Nothing was written by the failed runs.
  EXPECT_FALSE(PreparedDataExists(options.output_dir));
}

}  // namespace
}  // namespace trident::data
