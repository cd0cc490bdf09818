#include "core/io/atomic_file.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <span>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/io/file_util.h"
#include "core/io/test_util.h"
#include "gtest/gtest.h"

namespace trident::io {
namespace {

using testing::FreshTestDir;
using testing::ReadWholeFile;
using testing::WriteWholeFile;

std::vector<std::string> Entries(const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> entries = ListDirectory(dir);
  EXPECT_TRUE(entries.ok()) << entries.status();
  return entries.ok() ? *entries : std::vector<std::string>{};
}

TEST(AtomicFileTest, WritesAndLeavesNoTemporaryFile) {
  const std::string dir = FreshTestDir("atomic_write");
  const std::string path = JoinPath(dir, "out.bin");
  ASSERT_TRUE(WriteFileAtomically(path, std::string("hello\0world", 11)).ok());
  EXPECT_EQ(ReadWholeFile(path), std::string("hello\0world", 11));
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFileTest, ReplacesExistingFile) {
  const std::string dir = FreshTestDir("atomic_replace");
  const std::string path = JoinPath(dir, "out.txt");
  WriteWholeFile(path, "old contents that are longer");
  ASSERT_TRUE(WriteFileAtomically(path, "new").ok());
  EXPECT_EQ(ReadWholeFile(path), "new");
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"out.txt"});
}

TEST(AtomicFileTest, TemporaryFileIsNextToTargetUntilCommit) {
  const std::string dir = FreshTestDir("atomic_temp_name");
  const std::string path = JoinPath(dir, "x.tensors");
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Create(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_TRUE(absl::StartsWith(writer->temp_path(),
                               absl::StrCat(path, ".tmp.", static_cast<int>(::getpid()), ".")))
      << writer->temp_path();
  ASSERT_TRUE(writer->Append("abc").ok());
  EXPECT_FALSE(PathExists(path));  // nothing at the final path before Commit
  EXPECT_TRUE(PathExists(writer->temp_path()));
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(ReadWholeFile(path), "abc");
  EXPECT_FALSE(PathExists(writer->temp_path()));
  EXPECT_EQ(writer->bytes_written(), 3u);
  // A committed writer refuses more work.
  EXPECT_FALSE(writer->Append("more").ok());
  EXPECT_FALSE(writer->Commit().ok());
}

TEST(AtomicFileTest, AbandonedWriterRemovesTemporaryFile) {
  const std::string dir = FreshTestDir("atomic_abandon");
  const std::string path = JoinPath(dir, "never.bin");
  WriteWholeFile(path, "previous");
  {
    absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Create(path);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE(writer->Append("partial data").ok());
  }
  EXPECT_EQ(ReadWholeFile(path), "previous");
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"never.bin"});
}

TEST(AtomicFileTest, MissingDirectoryIsAClearError) {
  const std::string dir = FreshTestDir("atomic_missing_dir");
  const std::string path = JoinPath(dir, "no/such/dir/file.bin");
  const absl::Status status = WriteFileAtomically(path, "data");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "No such file or directory")) << status;
  EXPECT_TRUE(Entries(dir).empty());
}

TEST(AtomicFileTest, FailedRenameKeepsTargetAndRemovesTemporary) {
  // The target is a non-empty directory: rename(2) fails after all data is written.
  const std::string dir = FreshTestDir("atomic_rename_fails");
  const std::string path = JoinPath(dir, "target");
  ASSERT_TRUE(MakeDirectory(path).ok());
  WriteWholeFile(JoinPath(path, "keep.txt"), "kept");
  const absl::Status status = WriteFileAtomically(path, "data");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "Is a directory")) << status;
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"target"});
  EXPECT_EQ(ReadWholeFile(JoinPath(path, "keep.txt")), "kept");
}

TEST(AtomicFileTest, FailedWriteKeepsOldTargetAndRemovesTemporary) {
  // A file-size limit makes write(2) fail with EFBIG halfway through, the way a
  // full disk would.
  const std::string dir = FreshTestDir("atomic_write_fails");
  const std::string path = JoinPath(dir, "big.bin");
  WriteWholeFile(path, "old");
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto saved_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
  const absl::Status status = WriteFileAtomically(path, std::string(5000, 'x'));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  ::signal(SIGXFSZ, saved_handler);

  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "cannot write")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "File too large")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_EQ(ReadWholeFile(path), "old");
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"big.bin"});
}

TEST(AtomicFileTest, ReadOnlyDirectoryIsAClearError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  const std::string dir = FreshTestDir("atomic_read_only");
  ASSERT_EQ(::chmod(dir.c_str(), 0555), 0);
  const absl::Status status = WriteFileAtomically(JoinPath(dir, "f"), "data");
  ::chmod(dir.c_str(), 0755);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_TRUE(Entries(dir).empty());
}

TEST(AtomicFileTest, RejectsDirectoryLikePath) {
  EXPECT_TRUE(absl::IsInvalidArgument(WriteFileAtomically("", "x")));
  EXPECT_TRUE(absl::IsInvalidArgument(WriteFileAtomically("some/dir/", "x")));
}

TEST(AtomicFileTest, WriteAtCompletesAHeaderBeforeCommit) {
  const std::string dir = FreshTestDir("atomic_write_at");
  const std::string path = JoinPath(dir, "tokens.bin");
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Create(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE(writer->Append(std::string(4, '\0')).ok());  // placeholder header
  ASSERT_TRUE(writer->Append("payload").ok());
  ASSERT_TRUE(writer->WriteAt(0, "HEAD").ok());
  ASSERT_TRUE(writer->WriteAt(6, "YL").ok());  // inside the payload, up to its end
  EXPECT_EQ(writer->bytes_written(), 11u);     // overwriting does not grow the file
  ASSERT_TRUE(writer->Append(std::as_bytes(std::span<const char>("!", 1))).ok());
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(ReadWholeFile(path), "HEADpaYLoad!");
}

TEST(AtomicFileTest, WriteAtPastTheEndIsRefusedAndTheWriterLivesOn) {
  const std::string dir = FreshTestDir("atomic_write_at_past_end");
  const std::string path = JoinPath(dir, "f.bin");
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Create(path);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE(writer->Append("abc").ok());
  const absl::Status past_end = writer->WriteAt(2, "xy");
  EXPECT_TRUE(absl::IsOutOfRange(past_end)) << past_end;
  EXPECT_TRUE(absl::StrContains(past_end.message(), "WriteAt(2, 2 bytes) past the end (3)"))
      << past_end;
  EXPECT_TRUE(absl::StrContains(past_end.message(), path)) << past_end;
  EXPECT_TRUE(absl::IsOutOfRange(writer->WriteAt(uint64_t{1} << 63, "x")));
  ASSERT_TRUE(writer->WriteAt(3, "").ok());  // an empty write at the end is fine
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(ReadWholeFile(path), "abc");
  EXPECT_TRUE(absl::IsFailedPrecondition(writer->WriteAt(0, "z")));  // committed
}

TEST(AtomicFileTest, MoveAssignmentAbandonsTheOverwrittenWriter) {
  const std::string dir = FreshTestDir("atomic_move_assign");
  absl::StatusOr<AtomicFileWriter> first = AtomicFileWriter::Create(JoinPath(dir, "first"));
  absl::StatusOr<AtomicFileWriter> second = AtomicFileWriter::Create(JoinPath(dir, "second"));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(first->Append("1").ok());
  ASSERT_TRUE(second->Append("2").ok());
  *first = *std::move(second);  // "first"'s temporary goes away
  EXPECT_EQ(first->path(), JoinPath(dir, "second"));
  ASSERT_TRUE(first->Commit().ok());
  EXPECT_EQ(Entries(dir), std::vector<std::string>{"second"});
  EXPECT_EQ(ReadWholeFile(JoinPath(dir, "second")), "2");
}

}  // namespace
}  // namespace trident::io
