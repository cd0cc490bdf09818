#include "training/data/token_file.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/io/crc32c.h"
#include "core/io/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/data/test_util.h"

namespace trident::data {

using ::trident::io::Crc32c;
using ::trident::io::ReadFileToString;

namespace {

using ::testing::HasSubstr;
using testing::TempPath;
using testing::WriteBytes;

std::vector<int32_t> Iota(int n, int vocab) {
  std::vector<int32_t> tokens(n);
  for (int i = 0; i < n; ++i) tokens[i] = (i * 7 + 3) % vocab;
  return tokens;
}

std::vector<int32_t> ReadAll(const TokenFile& file) {
  std::vector<int32_t> tokens(file.size());
  const absl::Status status = file.CopyTokens(0, absl::MakeSpan(tokens));
  EXPECT_TRUE(status.ok()) << status;
  return tokens;
}

template <typename T>
T LoadAt(const std::string& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

template <typename T>
void StoreAt(std::string* bytes, size_t offset, T value) {
  std::memcpy(bytes->data() + offset, &value, sizeof(T));
}

// Builds a file by the documented layout, independently of the writer.
std::string CraftFile(uint32_t width, uint64_t vocab, const std::vector<int32_t>& tokens) {
  std::string payload;
  for (int32_t token : tokens) {
    if (width == 2) {
      const uint16_t value = static_cast<uint16_t>(token);
      payload.append(reinterpret_cast<const char*>(&value), 2);
    } else {
      payload.append(reinterpret_cast<const char*>(&token), 4);
    }
  }
  std::string header(64, '\0');
  std::memcpy(header.data(), "TRDTOKEN", 8);
  StoreAt<uint32_t>(&header, 8, 1);
  StoreAt<uint32_t>(&header, 12, width);
  StoreAt<uint64_t>(&header, 16, vocab);
  StoreAt<uint64_t>(&header, 24, tokens.size());
  StoreAt<uint32_t>(&header, 32, Crc32c(payload));
  StoreAt<uint32_t>(&header, 60, Crc32c(absl::string_view(header).substr(0, 60)));
  return header + payload;
}

std::string OpenError(const std::string& path,
                      absl::StatusCode code = absl::StatusCode::kDataLoss) {
  auto file = TokenFile::Open(path);
  EXPECT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), code) << file.status();
  EXPECT_THAT(file.status().message(), HasSubstr(path));
  return std::string(file.status().message());
}

TEST(TokenFileTest, RoundTripsSmallVocabularyAsUint16) {
  const std::string path = TempPath("train.bin");
  const std::vector<int32_t> tokens = Iota(1000, 256);
  ASSERT_TRUE(WriteTokenFile(path, 256, tokens).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path(), path);
  EXPECT_EQ(file->vocab_size(), 256);
  EXPECT_EQ(file->size(), 1000);
  EXPECT_EQ(file->token_width(), 2);
  EXPECT_EQ(ReadAll(*file), tokens);
  std::vector<int32_t> middle(10);
  ASSERT_TRUE(file->CopyTokens(500, absl::MakeSpan(middle)).ok());
  EXPECT_EQ(middle, std::vector<int32_t>(tokens.begin() + 500, tokens.begin() + 510));
  EXPECT_EQ(std::filesystem::file_size(path), 64u + 2 * 1000);
}

TEST(TokenFileTest, RoundTripsLargeVocabularyAsInt32) {
  const std::string path = TempPath("big.bin");
  std::vector<int32_t> tokens = Iota(777, 100000);
  tokens.push_back(99999);
  ASSERT_TRUE(WriteTokenFile(path, 100000, tokens).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->token_width(), 4);
  EXPECT_EQ(ReadAll(*file), tokens);
  // GPT-2's 50257 still fits uint16; 65536 is the last vocabulary that does.
  EXPECT_EQ(TokenWidthForVocab(50257), 2);
  EXPECT_EQ(TokenWidthForVocab(65536), 2);
  EXPECT_EQ(TokenWidthForVocab(65537), 4);
}

TEST(TokenFileTest, HeaderFollowsTheDocumentedLayout) {
  const std::string path = TempPath("layout.bin");
  const std::vector<int32_t> tokens = {5, 0, 255, 17};
  ASSERT_TRUE(WriteTokenFile(path, 256, tokens).ok());
  const std::string bytes = *ReadFileToString(path);
  EXPECT_EQ(bytes, CraftFile(2, 256, tokens));
  EXPECT_EQ(bytes.substr(0, 8), "TRDTOKEN");
  EXPECT_EQ(LoadAt<uint64_t>(bytes, 24), 4u);
}

TEST(TokenFileTest, AFileWithNoTokensIsValid) {
  const std::string path = TempPath("none.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, {}).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 0);
}

TEST(TokenFileTest, WriterReplacesAtomicallyAndRefusesBadTokens) {
  const std::string path = TempPath("replace.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, {1, 2, 3}).ok());
  ASSERT_TRUE(WriteTokenFile(path, 256, {4, 5}).ok());
  EXPECT_EQ(ReadAll(*TokenFile::Open(path)), (std::vector<int32_t>{4, 5}));

  // A bad token aborts the write: the old file stays, no temporary is left.
  const absl::Status status = WriteTokenFile(path, 256, {7, 8, 256});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("token at position 2 has value 256, outside the vocabulary [0, 256)"));
  EXPECT_THAT(WriteTokenFile(path, 256, {-3}).message(), HasSubstr("position 0 has value -3"));
  EXPECT_EQ(ReadAll(*TokenFile::Open(path)), (std::vector<int32_t>{4, 5}));
  int entries = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1);

  EXPECT_THAT(WriteTokenFile(path, 0, {}).message(), HasSubstr("vocab_size 0 is outside"));
  const absl::Status no_dir = WriteTokenFile("/nonexistent/dir/x.bin", 256, {1});
  EXPECT_THAT(no_dir.message(), HasSubstr("/nonexistent/dir/x.bin"));
  EXPECT_THAT(no_dir.message(), HasSubstr("No such file or directory"));
}

TEST(TokenFileTest, MissingFileNamesThePathAndTheErrno) {
  const std::string path = TempPath("absent.bin");
  auto file = TokenFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr(path));
  EXPECT_THAT(file.status().message(), HasSubstr("No such file or directory"));
}

TEST(TokenFileTest, RefusesAnEmptyFile) {
  const std::string path = TempPath("empty.bin");
  WriteBytes(path, "");
  EXPECT_THAT(OpenError(path), HasSubstr("the file is empty (0 bytes)"));
}

TEST(TokenFileTest, RefusesATruncatedFileWithTheByteCounts) {
  const std::string path = TempPath("cut.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, Iota(100, 256)).ok());
  std::string bytes = *ReadFileToString(path);
  WriteBytes(path, bytes.substr(0, bytes.size() - 3));
  EXPECT_THAT(OpenError(path),
              HasSubstr("truncated: the header promises 100 tokens (264 bytes) but the file has "
                        "261 bytes"));
  WriteBytes(path, bytes.substr(0, 10));
  EXPECT_THAT(OpenError(path), HasSubstr("truncated: 10 bytes, fewer than the 64-byte header"));
  WriteBytes(path, bytes + "xx");
  EXPECT_THAT(OpenError(path), HasSubstr("the file has 266 bytes, 2 more than"));
}

TEST(TokenFileTest, RefusesCorruptedPayloadAndHeader) {
  const std::string path = TempPath("corrupt.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, Iota(100, 256)).ok());
  const std::string good = *ReadFileToString(path);

  std::string bad_payload = good;
  bad_payload[64 + 51] ^= 0x01;
  WriteBytes(path, bad_payload);
  EXPECT_THAT(OpenError(path), HasSubstr("payload checksum mismatch"));

  std::string bad_count = good;
  bad_count[24] ^= 0x01;  // 101 tokens claimed
  WriteBytes(path, bad_count);
  EXPECT_THAT(OpenError(path), HasSubstr("header checksum mismatch"));

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  WriteBytes(path, bad_magic);
  EXPECT_THAT(OpenError(path), HasSubstr("not a token file"));
}

TEST(TokenFileTest, RefusesUnsupportedHeaders) {
  const std::string path = TempPath("header.bin");
  std::string bytes = CraftFile(2, 256, {1, 2});
  StoreAt<uint32_t>(&bytes, 8, 2);  // version
  StoreAt<uint32_t>(&bytes, 60, Crc32c(absl::string_view(bytes).substr(0, 60)));
  WriteBytes(path, bytes);
  EXPECT_THAT(OpenError(path), HasSubstr("version 2 is not supported"));

  WriteBytes(path, CraftFile(4, 256, {1, 2}));
  EXPECT_THAT(OpenError(path), HasSubstr("token width 4 bytes does not match vocab_size 256"));
}

TEST(TokenFileTest, RefusesATokenOutsideTheVocabularyNamingPositionAndValue) {
  const std::string path = TempPath("oov.bin");
  WriteBytes(path, CraftFile(2, 256, {1, 2, 3, 4, 5, 300, 6}));
  EXPECT_THAT(OpenError(path), HasSubstr("token at position 5 has value 300, outside the "
                                         "vocabulary [0, 256)"));
  WriteBytes(path, CraftFile(4, 70000, {1, -2}));
  EXPECT_THAT(OpenError(path), HasSubstr("token at position 1 has value -2"));
}

TEST(TokenFileTest, MovesKeepTheOpenFile) {
  const std::string path = TempPath("move.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, {9, 8, 7}).ok());
  auto opened = TokenFile::Open(path);
  ASSERT_TRUE(opened.ok());
  TokenFile moved = *std::move(opened);
  TokenFile assigned = *TokenFile::Open(path);
  assigned = std::move(moved);
  EXPECT_EQ(ReadAll(assigned), (std::vector<int32_t>{9, 8, 7}));
}

TEST(TokenFileTest, RefusesADirectoryAndOtherNonRegularFiles) {
  const std::string dir = TempPath("a_directory.bin");
  std::filesystem::create_directories(dir);
  EXPECT_THAT(OpenError(dir, absl::StatusCode::kInvalidArgument),
              HasSubstr("token file " + dir + " is a directory"));
  const std::string fifo = TempPath("fifo.bin");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Returns at once (no writer needed) and names the rule.
  EXPECT_THAT(OpenError(fifo, absl::StatusCode::kInvalidArgument),
              HasSubstr("is not a regular file"));
}

// The job keeps reading a file that is replaced, truncated or rewritten under
// it: no SIGBUS, either the snapshot it opened or an error naming the file.
TEST(TokenFileTest, AFileReplacedAfterOpenStillReadsTheOpenedTokens) {
  const std::string path = TempPath("replaced.bin");
  const std::vector<int32_t> tokens = Iota(5000, 256);
  ASSERT_TRUE(WriteTokenFile(path, 256, tokens).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  // An atomic writer renames a new file over the old one.
  ASSERT_TRUE(WriteTokenFile(path, 256, {1, 2, 3}).ok());
  EXPECT_EQ(ReadAll(*file), tokens);
  std::filesystem::remove(path);
  EXPECT_EQ(ReadAll(*file), tokens);
}

TEST(TokenFileTest, AFileTruncatedAfterOpenIsAnErrorNamingIt) {
  const std::string path = TempPath("truncated_later.bin");
  ASSERT_TRUE(WriteTokenFile(path, 256, Iota(5000, 256)).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  std::filesystem::resize_file(path, 64 + 2 * 100);
  std::vector<int32_t> window(129);
  ASSERT_TRUE(file->CopyTokens(0, absl::MakeSpan(window).subspan(0, 50)).ok());
  const absl::Status late = file->CopyTokens(4000, absl::MakeSpan(window));
  EXPECT_THAT(late.message(), HasSubstr("token file " + path + ": tokens [4000, 4129): read 0 of "
                                        "258 bytes; the file was truncated after it was opened"));
  EXPECT_THAT(file->CopyTokens(50, absl::MakeSpan(window)).message(),
              HasSubstr("read 100 of 258 bytes"));
  std::filesystem::resize_file(path, 0);
  EXPECT_FALSE(file->CopyTokens(0, absl::MakeSpan(window)).ok());
}

TEST(TokenFileTest, ATokenRewrittenInPlaceOutsideTheVocabularyIsAnError) {
  const std::string path = TempPath("rewritten.bin");
  ASSERT_TRUE(WriteTokenFile(path, 100000, Iota(300, 100000)).ok());
  auto file = TokenFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  std::string bytes = ReadFileToString(path).value();
  StoreAt<int32_t>(&bytes, 64 + 4 * 200, 123456);
  {
    std::FILE* out = std::fopen(path.c_str(), "r+b");  // In place: same inode.
    ASSERT_NE(out, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), out), bytes.size());
    std::fclose(out);
  }
  std::vector<int32_t> window(10);
  EXPECT_THAT(file->CopyTokens(195, absl::MakeSpan(window)).message(),
              HasSubstr("token at position 200 has value 123456, outside the vocabulary [0, "
                        "100000): the file changed after it was opened"));
}

}  // namespace
}  // namespace trident::data
