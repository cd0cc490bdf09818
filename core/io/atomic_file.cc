#include "core/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/file_util.h"
#include "core/status_macros.h"

namespace trident::io {

absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Create(std::string path) {
  if (path.empty() || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("atomic write target '", path, "' is not a file path"));
  }
  // The random suffix keeps concurrent writers of the same path (two ranks, two
  // threads, a crashed earlier attempt) from colliding on one temporary file.
  absl::BitGen random;
  const std::string temp_path =
      absl::StrFormat("%s.tmp.%d.%016x", path, static_cast<int>(::getpid()),
                      absl::Uniform<uint64_t>(random));
  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return PosixError(errno, "cannot create temporary file", temp_path);
  return AtomicFileWriter(std::move(path), temp_path, fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      bytes_written_(other.bytes_written_) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon(absl::OkStatus()).IgnoreError();
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
    fd_ = std::exchange(other.fd_, -1);
    bytes_written_ = other.bytes_written_;
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(absl::OkStatus()).IgnoreError(); }

absl::Status AtomicFileWriter::Abandon(absl::Status error) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_path_.c_str());
  }
  return error;
}

absl::Status AtomicFileWriter::CheckOpen() const {
  if (fd_ >= 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("atomic write of '", path_, "' is already committed or failed"));
}

absl::Status AtomicFileWriter::WriteAll(uint64_t offset, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t wrote =
        ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Abandon(PosixError(errno, "cannot write", temp_path_));
    }
    bytes.remove_prefix(static_cast<size_t>(wrote));
    offset += static_cast<uint64_t>(wrote);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Append(absl::Span<const std::byte> bytes) {
  return Append(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

absl::Status AtomicFileWriter::Append(absl::string_view bytes) {
  RETURN_IF_ERROR(CheckOpen());
  RETURN_IF_ERROR(WriteAll(bytes_written_, bytes));
  bytes_written_ += bytes.size();
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::WriteAt(uint64_t offset, absl::string_view bytes) {
  RETURN_IF_ERROR(CheckOpen());
  if (offset > bytes_written_ || bytes.size() > bytes_written_ - offset) {
    return absl::OutOfRangeError(absl::StrCat("WriteAt(", offset, ", ", bytes.size(),
                                              " bytes) past the end (", bytes_written_, ") of '",
                                              path_, "'"));
  }
  return WriteAll(offset, bytes);
}

absl::Status AtomicFileWriter::Commit() {
  RETURN_IF_ERROR(CheckOpen());
  if (::fsync(fd_) != 0) return Abandon(PosixError(errno, "cannot fsync", temp_path_));
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) {
    const int error_number = errno;
    ::unlink(temp_path_.c_str());
    return PosixError(error_number, "cannot close", temp_path_);
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int error_number = errno;
    ::unlink(temp_path_.c_str());
    return PosixError(error_number, absl::StrCat("cannot rename '", temp_path_, "' to"), path_);
  }
  // The file is in place; make the directory entry durable too.
  return SyncDirectory(ParentDirectory(path_));
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  RETURN_IF_ERROR(writer.Append(contents));
  return writer.Commit();
}

}  // namespace trident::io
