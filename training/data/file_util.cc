#include "training/data/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace trident::data {
namespace {

absl::Status ErrnoError(int error_number, absl::string_view operation, absl::string_view path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat("cannot ", operation, " ", path));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes all of `bytes` at `offset`, retrying short writes and EINTR.
absl::Status PwriteAll(int fd, absl::string_view bytes, off_t offset, const std::string& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::pwrite(fd, bytes.data(), bytes.size(), offset);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    bytes.remove_prefix(static_cast<size_t>(written));
    offset += written;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open", path);
  std::string contents;
  struct stat info;
  if (::fstat(fd, &info) == 0 && info.st_size > 0) {
    contents.reserve(static_cast<size_t>(info.st_size));
  }
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error_number = errno;
      ::close(fd);
      return ErrnoError(error_number, "read", path);
    }
    if (got == 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return contents;
}

absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Create(const std::string& path) {
  std::string temp_path = absl::StrCat(path, ".tmp-XXXXXX");
  const int fd = ::mkstemp(temp_path.data());
  if (fd < 0) return ErrnoError(errno, "create a temporary file for", path);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return AtomicFileWriter(path, std::move(temp_path), fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      committed_(std::exchange(other.committed_, true)) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

absl::Status AtomicFileWriter::Append(absl::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already closed"));
  const absl::Status status = PwriteAll(fd_, bytes, size_, temp_path_);
  if (status.ok()) size_ += static_cast<off_t>(bytes.size());
  return status;
}

absl::Status AtomicFileWriter::WriteAt(off_t offset, absl::string_view bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already closed"));
  if (offset < 0 || offset + static_cast<off_t>(bytes.size()) > size_) {
    return absl::OutOfRangeError(absl::StrCat("WriteAt(", offset, ", ", bytes.size(),
                                              " bytes) past the end (", size_, ") of ", path_));
  }
  return PwriteAll(fd_, bytes, offset, temp_path_);
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is already closed"));
  if (::fsync(fd_) != 0) return ErrnoError(errno, "fsync", temp_path_);
  // mkstemp creates 0600; a data file is as readable as any other output.
  ::fchmod(fd_, 0644);
  const int close_result = ::close(fd_);
  fd_ = -1;
  if (close_result != 0) return ErrnoError(errno, "close", temp_path_);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return ErrnoError(errno, absl::StrCat("rename ", temp_path_, " to"), path_);
  }
  committed_ = true;
  // The rename is durable only once the directory entry is.
  const std::string directory = DirectoryOf(path_);
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return ErrnoError(errno, "open directory", directory);
  const int sync_result = ::fsync(dir_fd);
  const int sync_errno = errno;
  ::close(dir_fd);
  if (sync_result != 0) return ErrnoError(sync_errno, "fsync directory", directory);
  return absl::OkStatus();
}

}  // namespace trident::data
