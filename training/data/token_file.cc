#include "training/data/token_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/status_macros.h"

namespace trident::data {

using ::trident::io::AtomicFileWriter;
using ::trident::io::Crc32cExtend;

namespace {

static_assert(std::endian::native == std::endian::little,
              "token files are little-endian and read as they are");

constexpr size_t kVersionOffset = 8;
constexpr size_t kWidthOffset = 12;
constexpr size_t kVocabOffset = 16;
constexpr size_t kCountOffset = 24;
constexpr size_t kPayloadCrcOffset = 32;
constexpr size_t kHeaderCrcOffset = 60;

template <typename T>
void Store(unsigned char* header, size_t offset, T value) {
  std::memcpy(header + offset, &value, sizeof(value));
}

template <typename T>
T Load(const unsigned char* header, size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(value));
  return value;
}

std::string EncodeHeader(int width, int64_t vocab_size, int64_t count, uint32_t payload_crc) {
  unsigned char header[kTokenFileHeaderBytes] = {};
  std::memcpy(header, kTokenFileMagic, sizeof(kTokenFileMagic));
  Store<uint32_t>(header, kVersionOffset, kTokenFileVersion);
  Store<uint32_t>(header, kWidthOffset, static_cast<uint32_t>(width));
  Store<uint64_t>(header, kVocabOffset, static_cast<uint64_t>(vocab_size));
  Store<uint64_t>(header, kCountOffset, static_cast<uint64_t>(count));
  Store<uint32_t>(header, kPayloadCrcOffset, payload_crc);
  Store<uint32_t>(header, kHeaderCrcOffset, Crc32cExtend(0, header, kHeaderCrcOffset));
  return std::string(reinterpret_cast<const char*>(header), sizeof(header));
}

absl::Status FileError(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("token file ", path, ": ", what));
}

}  // namespace

int TokenWidthForVocab(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

absl::StatusOr<TokenFileWriter> TokenFileWriter::Create(const std::string& path,
                                                        int64_t vocab_size) {
  if (vocab_size < 1 || vocab_size > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("token file ", path, ": vocab_size ", vocab_size,
                                                   " is outside [1, 2^31 - 1]"));
  }
  ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::Create(path));
  TokenFileWriter writer(std::move(file), vocab_size);
  // A zero header holds the place until Finish() knows the count and checksum.
  RETURN_IF_ERROR(writer.file_.Append(std::string(kTokenFileHeaderBytes, '\0')));
  return writer;
}

absl::Status TokenFileWriter::Append(absl::Span<const int32_t> tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size_) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "token file %s: token at position %d has value %d, outside the vocabulary [0, %d)",
          file_.path(), token_count_ + static_cast<int64_t>(i), tokens[i], vocab_size_));
    }
  }
  const int width = TokenWidthForVocab(vocab_size_);
  buffer_.resize(tokens.size() * width);
  auto* out = reinterpret_cast<unsigned char*>(buffer_.data());
  if (width == 2) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const auto value = static_cast<uint16_t>(tokens[i]);
      std::memcpy(out + 2 * i, &value, 2);
    }
  } else {
    std::memcpy(out, tokens.data(), tokens.size() * 4);
  }
  RETURN_IF_ERROR(file_.Append(buffer_));
  payload_crc_ = Crc32cExtend(payload_crc_, buffer_.data(), buffer_.size());
  token_count_ += static_cast<int64_t>(tokens.size());
  return absl::OkStatus();
}

absl::Status TokenFileWriter::Finish() {
  RETURN_IF_ERROR(file_.WriteAt(
      0, EncodeHeader(TokenWidthForVocab(vocab_size_), vocab_size_, token_count_, payload_crc_)));
  return file_.Commit();
}

absl::Status WriteTokenFile(const std::string& path, int64_t vocab_size,
                            absl::Span<const int32_t> tokens) {
  ASSIGN_OR_RETURN(TokenFileWriter writer, TokenFileWriter::Create(path, vocab_size));
  // Chunks bound the conversion buffer.
  constexpr size_t kChunk = 1 << 20;
  for (size_t begin = 0; begin < tokens.size(); begin += kChunk) {
    RETURN_IF_ERROR(writer.Append(tokens.subspan(begin, kChunk)));
  }
  return writer.Finish();
}

absl::StatusOr<TokenFile> TokenFile::Open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open token file ", path));
  TokenFile file;  // Owns fd from here on.
  file.path_ = path;
  file.fd_ = fd;
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat token file ", path));
  }
  if (S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token file ", path, " is a directory; name a .bin file written by //tools:prepare_data"));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token file ", path, " is not a regular file (a device, FIFO or socket); name a .bin "
        "file written by //tools:prepare_data"));
  }
  const int64_t file_bytes = info.st_size;
  if (file_bytes == 0) {
    return FileError(path,
                     "the file is empty (0 bytes); a token file starts with a 64-byte "
                     "header (write one with //tools:prepare_data)");
  }
  if (file_bytes < kTokenFileHeaderBytes) {
    return FileError(
        path, absl::StrCat("truncated: ", file_bytes, " bytes, fewer than the 64-byte header"));
  }
  unsigned char header[kTokenFileHeaderBytes];
  ASSIGN_OR_RETURN(const int64_t header_read, file.ReadAt(0, header, sizeof(header)));
  if (header_read != kTokenFileHeaderBytes) {
    return FileError(path, absl::StrCat("truncated while opening: read ", header_read,
                                        " of the 64 header bytes"));
  }

  if (std::memcmp(header, kTokenFileMagic, sizeof(kTokenFileMagic)) != 0) {
    return FileError(path, "not a token file: the first 8 bytes are not \"TRDTOKEN\"");
  }
  const uint32_t stored_header_crc = Load<uint32_t>(header, kHeaderCrcOffset);
  const uint32_t header_crc = Crc32cExtend(0, header, kHeaderCrcOffset);
  if (stored_header_crc != header_crc) {
    return FileError(path, absl::StrFormat("header checksum mismatch (stored 0x%08x, computed "
                                           "0x%08x): the header is corrupted",
                                           stored_header_crc, header_crc));
  }
  const uint32_t version = Load<uint32_t>(header, kVersionOffset);
  if (version != kTokenFileVersion) {
    return FileError(path, absl::StrCat("version ", version, " is not supported (this build reads ",
                                        kTokenFileVersion, ")"));
  }
  const uint64_t vocab_size = Load<uint64_t>(header, kVocabOffset);
  if (vocab_size < 1 || vocab_size > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return FileError(path, absl::StrCat("vocab_size ", vocab_size, " is outside [1, 2^31 - 1]"));
  }
  const uint32_t width = Load<uint32_t>(header, kWidthOffset);
  if (width != static_cast<uint32_t>(TokenWidthForVocab(static_cast<int64_t>(vocab_size)))) {
    return FileError(path, absl::StrCat("token width ", width, " bytes does not match vocab_size ",
                                        vocab_size, " (which needs ",
                                        TokenWidthForVocab(static_cast<int64_t>(vocab_size)), ")"));
  }
  const uint64_t count = Load<uint64_t>(header, kCountOffset);
  const uint64_t max_count =
      (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - kTokenFileHeaderBytes) / width;
  if (count > max_count) {
    return FileError(path, absl::StrCat("token_count ", count, " is impossibly large"));
  }
  const int64_t expected_bytes = kTokenFileHeaderBytes + static_cast<int64_t>(count * width);
  if (file_bytes < expected_bytes) {
    return FileError(
        path, absl::StrCat("truncated: the header promises ", count, " tokens (", expected_bytes,
                           " bytes) but the file has ", file_bytes, " bytes"));
  }
  if (file_bytes > expected_bytes) {
    return FileError(path, absl::StrCat("the file has ", file_bytes, " bytes, ",
                                        file_bytes - expected_bytes, " more than the header's ",
                                        count, " tokens (", expected_bytes, " bytes) account for"));
  }
  file.vocab_size_ = static_cast<int64_t>(vocab_size);
  file.token_count_ = static_cast<int64_t>(count);
  file.token_width_ = static_cast<int>(width);
  file.payload_crc_ = Load<uint32_t>(header, kPayloadCrcOffset);

  // One pass over the payload in chunks: the checksum and the first token
  // outside the vocabulary (reported after a checksum mismatch, the likelier
  // cause).
  constexpr int64_t kChunkTokens = 1 << 18;
  std::vector<unsigned char> raw;
  std::vector<int32_t> tokens;
  uint32_t payload_crc = 0;
  std::optional<std::pair<int64_t, int32_t>> bad_token;  // (position, value)
  for (int64_t begin = 0; begin < file.token_count_; begin += kChunkTokens) {
    const int64_t n = std::min(kChunkTokens, file.token_count_ - begin);
    raw.resize(static_cast<size_t>(n * width));
    RETURN_IF_ERROR(file.ReadPayload(begin, n, raw.data()));
    payload_crc = Crc32cExtend(payload_crc, raw.data(), raw.size());
    tokens.resize(static_cast<size_t>(n));
    file.Decode(raw.data(), absl::MakeSpan(tokens));
    for (int64_t i = 0; i < n && !bad_token.has_value(); ++i) {
      if (tokens[i] < 0 || tokens[i] >= file.vocab_size_) bad_token.emplace(begin + i, tokens[i]);
    }
  }
  if (payload_crc != file.payload_crc_) {
    return FileError(path, absl::StrFormat("payload checksum mismatch (stored 0x%08x, computed "
                                           "0x%08x): the tokens are corrupted",
                                           file.payload_crc_, payload_crc));
  }
  if (bad_token.has_value()) {
    return FileError(path, absl::StrCat("token at position ", bad_token->first, " has value ",
                                        bad_token->second, ", outside the vocabulary [0, ",
                                        file.vocab_size_, ")"));
  }
  return file;
}

TokenFile::TokenFile(TokenFile&& other) noexcept { *this = std::move(other); }

TokenFile& TokenFile::operator=(TokenFile&& other) noexcept {
  if (this != &other) {
    Close();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    vocab_size_ = std::exchange(other.vocab_size_, 0);
    token_count_ = std::exchange(other.token_count_, 0);
    token_width_ = std::exchange(other.token_width_, 0);
    payload_crc_ = std::exchange(other.payload_crc_, 0);
  }
  return *this;
}

TokenFile::~TokenFile() { Close(); }

void TokenFile::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

absl::StatusOr<int64_t> TokenFile::ReadAt(int64_t offset, unsigned char* out,
                                          int64_t bytes) const {
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd_, out + done, static_cast<size_t>(bytes - done),
                                static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot read token file ", path_,
                                                     " at byte ", offset + done));
    }
    if (got == 0) break;  // End of file.
    done += got;
  }
  return done;
}

absl::Status TokenFile::ReadPayload(int64_t begin, int64_t count, unsigned char* out) const {
  const int64_t bytes = count * token_width_;
  ASSIGN_OR_RETURN(const int64_t got,
                   ReadAt(kTokenFileHeaderBytes + begin * token_width_, out, bytes));
  if (got != bytes) {
    return FileError(path_, absl::StrCat("tokens [", begin, ", ", begin + count, "): read ", got,
                                         " of ", bytes, " bytes; the file was truncated after it "
                                         "was opened (write token files atomically, by rename)"));
  }
  return absl::OkStatus();
}

void TokenFile::Decode(const unsigned char* raw, absl::Span<int32_t> out) const {
  if (token_width_ == 4) {
    std::memcpy(out.data(), raw, 4 * out.size());
    return;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t value;
    std::memcpy(&value, raw + 2 * i, 2);
    out[i] = value;
  }
}

absl::Status TokenFile::CopyTokens(int64_t begin, absl::Span<int32_t> out) const {
  const int64_t count = static_cast<int64_t>(out.size());
  TRIDENT_CHECK(begin >= 0 && count >= 0 && begin + count <= token_count_)
      << "tokens [" << begin << ", " << begin + count << ") of " << token_count_ << " in " << path_;
  if (token_width_ == 4) {
    RETURN_IF_ERROR(ReadPayload(begin, count, reinterpret_cast<unsigned char*>(out.data())));
  } else {
    std::vector<unsigned char> raw(static_cast<size_t>(count * token_width_));
    RETURN_IF_ERROR(ReadPayload(begin, count, raw.data()));
    Decode(raw.data(), out);
  }
  // Open checked every token; a token outside the vocabulary now means the
  // file was rewritten in place since.
  for (int64_t i = 0; i < count; ++i) {
    if (out[i] < 0 || out[i] >= vocab_size_) {
      return FileError(path_, absl::StrCat("token at position ", begin + i, " has value ", out[i],
                                           ", outside the vocabulary [0, ", vocab_size_,
                                           "): the file changed after it was opened"));
    }
  }
  return absl::OkStatus();
}

}  // namespace trident::data
