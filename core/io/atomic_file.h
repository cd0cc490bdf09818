#ifndef TRIDENT_CORE_IO_ATOMIC_FILE_H_
#define TRIDENT_CORE_IO_ATOMIC_FILE_H_

// Writing a file so that readers (and a machine that loses power) see either the
// old file or the complete new one, never a prefix of it.
//
// Protocol: the bytes go to `<path>.tmp.<pid>.<random>` in the target's own
// directory (rename is only atomic within one filesystem); Commit() fsyncs and
// closes that file, renames it over `<path>`, then fsyncs the directory so the
// rename itself is durable. Any I/O failure, and destroying a writer that was
// not committed, removes the temporary file; `<path>` is then untouched.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trident::io {

// Streams the contents of one file; move-only.
class AtomicFileWriter {
 public:
  // Creates the temporary file next to `path` (mode 0644 less the umask). Fails
  // (naming the temporary path, which starts with `path`, and the errno text)
  // when the directory is missing or not writable; INVALID_ARGUMENT when `path`
  // is empty or ends in '/'.
  static absl::StatusOr<AtomicFileWriter> Create(std::string path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  // Abandons the file this writer held, then takes over `other`'s.
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Abandons an uncommitted file: closes and removes the temporary.
  ~AtomicFileWriter();

  // Appends bytes. After an I/O error the writer is dead: the temporary file is
  // already removed and every later call fails.
  absl::Status Append(absl::Span<const std::byte> bytes);
  absl::Status Append(absl::string_view bytes);

  // Overwrites bytes already appended (e.g. a header completed at the end). A
  // range past bytes_written() is OUT_OF_RANGE and writes nothing (the writer
  // stays usable); an I/O error kills the writer as in Append.
  absl::Status WriteAt(uint64_t offset, absl::string_view bytes);

  // Makes the file appear at `path()` with everything written so far.
  absl::Status Commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  // The file's length so far (what Append added; WriteAt does not change it).
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}

  // FAILED_PRECONDITION unless the writer can still write.
  absl::Status CheckOpen() const;
  // pwrite(2) of all of `bytes` at `offset`, retrying short writes and EINTR;
  // abandons the file on failure.
  absl::Status WriteAll(uint64_t offset, absl::string_view bytes);
  // Closes and unlinks the temporary file (if still open) and returns `error`.
  absl::Status Abandon(absl::Status error);

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;  // -1 once committed, abandoned or moved from.
  uint64_t bytes_written_ = 0;
};

// Writes `contents` to `path` atomically (one Create/Append/Commit).
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_ATOMIC_FILE_H_
