#ifndef TRIDENT_TRAINING_DATA_FILE_UTIL_H_
#define TRIDENT_TRAINING_DATA_FILE_UTIL_H_

// Small POSIX file helpers whose errors are absl::Status values naming the path,
// the operation and the errno text.

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::data {

absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes a file so that readers see either the old file or the complete new
// one, never a part: bytes go to a temporary file beside `path`; Commit() fsyncs
// it, renames it over `path` and fsyncs the directory. Destroying the writer
// without a successful Commit() removes the temporary file.
class AtomicFileWriter {
 public:
  static absl::StatusOr<AtomicFileWriter> Create(const std::string& path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends at the end of what was written so far.
  absl::Status Append(absl::string_view bytes);
  // Overwrites bytes already written (e.g. a header completed at the end).
  absl::Status WriteAt(off_t offset, absl::string_view bytes);
  absl::Status Commit();

  const std::string& path() const { return path_; }
  off_t size() const { return size_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  off_t size_ = 0;
  bool committed_ = false;
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_FILE_UTIL_H_
