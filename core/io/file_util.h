#ifndef TRIDENT_CORE_IO_FILE_UTIL_H_
#define TRIDENT_CORE_IO_FILE_UTIL_H_

// Thin POSIX file helpers that turn errno into absl::Status values whose
// message names the operation, the path and the errno text, and whose code is
// the one errno maps to (ENOENT -> NOT_FOUND, EACCES -> PERMISSION_DENIED, ...).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trident::io {

// "<what> '<path>': <errno text>", with the status code errno maps to.
absl::Status PosixError(int error_number, absl::string_view what, absl::string_view path);

// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/". Trailing slashes of `path` are ignored.
std::string ParentDirectory(absl::string_view path);
// "a/b/" -> "a/b" (but "/" stays "/").
std::string StripTrailingSlashes(absl::string_view path);
// "a" + "b" -> "a/b"; "a/" + "b" -> "a/b"; "" + "b" -> "b".
std::string JoinPath(absl::string_view directory, absl::string_view name);

// Whether anything (file, directory, link) exists at `path`.
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// Creates one directory level; succeeds when it already exists as a directory.
absl::Status MakeDirectory(const std::string& path);
// Deletes `path` and everything below it; succeeds when nothing is there.
absl::Status RemoveTree(const std::string& path);
// rename(2) with a clear error.
absl::Status RenamePath(const std::string& from, const std::string& to);
// fsync(2) on a directory, so renames and creations inside it are durable.
absl::Status SyncDirectory(const std::string& path);
// Names of the entries of a directory, without "." and "..", sorted.
absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path);

// Reads a whole file until its end. Works for anything read(2) can read to the
// end (a regular file, a pipe, a /proc file whose size says 0); a directory is
// an error (EISDIR, FAILED_PRECONDITION).
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// A regular file opened for positional reads. Move-only; closes on destruction.
class ReadOnlyFile {
 public:
  // Fails for a missing path, and for anything but a regular file
  // (FAILED_PRECONDITION), since size() must mean the file's length.
  static absl::StatusOr<ReadOnlyFile> Open(const std::string& path);

  ReadOnlyFile(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile& operator=(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;
  ~ReadOnlyFile();

  const std::string& path() const { return path_; }
  // Size when opened.
  uint64_t size() const { return size_; }

  // Fills `destination` with the bytes at `offset`; a DATA_LOSS error (naming
  // the path, the offset and the file size) if the file ends before.
  absl::Status ReadAt(uint64_t offset, absl::Span<std::byte> destination) const;

 private:
  ReadOnlyFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_FILE_UTIL_H_
