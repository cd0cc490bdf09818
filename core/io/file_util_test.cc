#include "core/io/file_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"

namespace trident::io {
namespace {

using testing::FreshTestDir;
using testing::WriteWholeFile;

TEST(FileUtilTest, PathHelpers) {
  EXPECT_EQ(ParentDirectory("a/b/c"), "a/b");
  EXPECT_EQ(ParentDirectory("a/b/c/"), "a/b");
  EXPECT_EQ(ParentDirectory("c"), ".");
  EXPECT_EQ(ParentDirectory("/c"), "/");
  EXPECT_EQ(StripTrailingSlashes("/x/y//"), "/x/y");
  EXPECT_EQ(StripTrailingSlashes("/"), "/");
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

TEST(FileUtilTest, RemoveTreeAndReadErrors) {
  const std::string dir = FreshTestDir("file_util_tree");
  ASSERT_TRUE(MakeDirectory(JoinPath(dir, "a")).ok());
  ASSERT_TRUE(MakeDirectory(JoinPath(dir, "a")).ok());  // already there: fine
  ASSERT_TRUE(MakeDirectory(JoinPath(dir, "a/b")).ok());
  WriteWholeFile(JoinPath(dir, "a/b/f"), "x");
  ASSERT_TRUE(RemoveTree(JoinPath(dir, "a")).ok());
  EXPECT_FALSE(PathExists(JoinPath(dir, "a")));
  EXPECT_TRUE(RemoveTree(JoinPath(dir, "a")).ok());  // nothing there: fine

  const absl::StatusOr<std::string> missing = ReadFileToString(JoinPath(dir, "nope"));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "nope"));
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "No such file or directory"));

  WriteWholeFile(JoinPath(dir, "short"), "12345");
  absl::StatusOr<ReadOnlyFile> file = ReadOnlyFile::Open(JoinPath(dir, "short"));
  ASSERT_TRUE(file.ok());
  std::vector<std::byte> buffer(10);
  const absl::Status past_end = file->ReadAt(0, absl::MakeSpan(buffer));
  EXPECT_TRUE(absl::IsDataLoss(past_end)) << past_end;
  EXPECT_TRUE(absl::StrContains(past_end.message(), "ends at byte 5")) << past_end;
}

TEST(FileUtilTest, ReadFileToStringReadsEverythingToTheEnd) {
  const std::string dir = FreshTestDir("file_util_read");
  const std::string binary("a\0b\xff\n\r\0", 7);
  WriteWholeFile(JoinPath(dir, "binary"), binary);
  EXPECT_EQ(*ReadFileToString(JoinPath(dir, "binary")), binary);
  WriteWholeFile(JoinPath(dir, "empty"), "");
  EXPECT_EQ(*ReadFileToString(JoinPath(dir, "empty")), "");
  // Larger than one read buffer, and not a multiple of anything round.
  std::string big(3 * 65536 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + i / 7);
  WriteWholeFile(JoinPath(dir, "big"), big);
  EXPECT_EQ(*ReadFileToString(JoinPath(dir, "big")), big);
  // /proc files report size 0 but have contents: the size is only a hint.
  const absl::StatusOr<std::string> proc = ReadFileToString("/proc/self/status");
  ASSERT_TRUE(proc.ok()) << proc.status();
  EXPECT_TRUE(absl::StrContains(*proc, "Name:")) << *proc;
}

TEST(FileUtilTest, ReadingADirectoryIsAClearError) {
  const std::string dir = FreshTestDir("file_util_read_dir");
  const absl::StatusOr<std::string> read = ReadFileToString(dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(read.status())) << read.status();
  EXPECT_TRUE(absl::StrContains(read.status().message(), dir)) << read.status();
  EXPECT_TRUE(absl::StrContains(read.status().message(), "Is a directory")) << read.status();
  const absl::StatusOr<ReadOnlyFile> open = ReadOnlyFile::Open(dir);
  EXPECT_TRUE(absl::IsFailedPrecondition(open.status())) << open.status();
  EXPECT_TRUE(absl::StrContains(open.status().message(), "not a regular file")) << open.status();
}

TEST(FileUtilTest, ListRenameAndIsDirectory) {
  const std::string dir = FreshTestDir("file_util_list");
  WriteWholeFile(JoinPath(dir, "b"), "2");
  WriteWholeFile(JoinPath(dir, "a"), "1");
  ASSERT_TRUE(MakeDirectory(JoinPath(dir, "c")).ok());
  EXPECT_EQ(*ListDirectory(dir), (std::vector<std::string>{"a", "b", "c"}));  // sorted
  EXPECT_TRUE(IsDirectory(JoinPath(dir, "c")));
  EXPECT_FALSE(IsDirectory(JoinPath(dir, "a")));
  EXPECT_FALSE(IsDirectory(JoinPath(dir, "zzz")));

  ASSERT_TRUE(RenamePath(JoinPath(dir, "a"), JoinPath(dir, "d")).ok());
  EXPECT_EQ(*ListDirectory(dir), (std::vector<std::string>{"b", "c", "d"}));
  const absl::Status missing = RenamePath(JoinPath(dir, "a"), JoinPath(dir, "e"));
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), JoinPath(dir, "a"))) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), JoinPath(dir, "e"))) << missing;

  EXPECT_TRUE(SyncDirectory(dir).ok());
  EXPECT_TRUE(absl::IsNotFound(SyncDirectory(JoinPath(dir, "zzz"))));
  EXPECT_TRUE(absl::IsNotFound(ListDirectory(JoinPath(dir, "zzz")).status()));
}

}  // namespace
}  // namespace trident::io
