#include "core/io/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace trident::io {

absl::Status PosixError(int error_number, absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(what, " '", path, "'"));
}

std::string StripTrailingSlashes(absl::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string ParentDirectory(absl::string_view path) {
  const std::string stripped = StripTrailingSlashes(path);
  const size_t slash = stripped.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return stripped.substr(0, slash);
}

std::string JoinPath(absl::string_view directory, absl::string_view name) {
  if (directory.empty()) return std::string(name);
  if (directory.back() == '/') return absl::StrCat(directory, name);
  return absl::StrCat(directory, "/", name);
}

bool PathExists(const std::string& path) {
  struct stat info;
  return ::lstat(path.c_str(), &info) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

absl::Status MakeDirectory(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0) return absl::OkStatus();
  const int error_number = errno;
  if (error_number == EEXIST && IsDirectory(path)) return absl::OkStatus();
  return PosixError(error_number, "cannot create directory", path);
}

absl::Status RemoveTree(const std::string& path) {
  struct stat info;
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return PosixError(errno, "cannot stat", path);
  }
  if (S_ISDIR(info.st_mode)) {
    ASSIGN_OR_RETURN(const std::vector<std::string> entries, ListDirectory(path));
    for (const std::string& entry : entries) {
      RETURN_IF_ERROR(RemoveTree(JoinPath(path, entry)));
    }
    if (::rmdir(path.c_str()) != 0) return PosixError(errno, "cannot remove directory", path);
    return absl::OkStatus();
  }
  if (::unlink(path.c_str()) != 0) return PosixError(errno, "cannot remove", path);
  return absl::OkStatus();
}

absl::Status RenamePath(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  return PosixError(errno, absl::StrCat("cannot rename '", from, "' to"), to);
}

absl::Status SyncDirectory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, "cannot open directory", path);
  const int result = ::fsync(fd);
  const int error_number = errno;
  ::close(fd);
  if (result != 0) return PosixError(error_number, "cannot fsync directory", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDirectory(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return PosixError(errno, "cannot open directory", path);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error_number = errno;
  ::closedir(dir);
  if (error_number != 0) return PosixError(error_number, "cannot list directory", path);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, "cannot open", path);
  std::string contents;
  // The size is only a hint: it can be 0 (pipes, /proc) or change while reading,
  // so the loop reads until read(2) reports the end.
  struct stat info;
  size_t capacity = 1 << 16;
  if (::fstat(fd, &info) == 0 && info.st_size > 0) {
    capacity = static_cast<size_t>(info.st_size) + 1;  // +1: see the end in one call
  }
  size_t size = 0;
  while (true) {
    if (size == contents.size()) contents.resize(std::max(capacity, 2 * contents.size()));
    const ssize_t got = ::read(fd, contents.data() + size, contents.size() - size);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int error_number = errno;
      ::close(fd);
      return PosixError(error_number, "cannot read", path);
    }
    if (got == 0) break;
    size += static_cast<size_t>(got);
  }
  ::close(fd);
  contents.resize(size);
  return contents;
}

absl::StatusOr<ReadOnlyFile> ReadOnlyFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, "cannot open", path);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    const int error_number = errno;
    ::close(fd);
    return PosixError(error_number, "cannot stat", path);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat("'", path, "' is not a regular file"));
  }
  return ReadOnlyFile(path, fd, static_cast<uint64_t>(info.st_size));
}

ReadOnlyFile::ReadOnlyFile(ReadOnlyFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), size_(other.size_) {}

ReadOnlyFile& ReadOnlyFile::operator=(ReadOnlyFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

ReadOnlyFile::~ReadOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status ReadOnlyFile::ReadAt(uint64_t offset, absl::Span<std::byte> destination) const {
  size_t done = 0;
  while (done < destination.size()) {
    const ssize_t got = ::pread(fd_, destination.data() + done, destination.size() - done,
                                static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return PosixError(errno, absl::StrCat("cannot read at offset ", offset + done, " of"),
                        path_);
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat("'", path_, "' ends at byte ", offset + done,
                                              ", but ", destination.size(),
                                              " bytes were needed from offset ", offset));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

}  // namespace trident::io
