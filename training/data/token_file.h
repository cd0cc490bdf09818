#ifndef TRIDENT_TRAINING_DATA_TOKEN_FILE_H_
#define TRIDENT_TRAINING_DATA_TOKEN_FILE_H_

// Token files: what //tools:prepare_data writes and the loader maps.
//
// Layout, little-endian, a 64-byte header then the tokens:
//   offset  size  field
//        0     8  magic "TRDTOKEN"
//        8     4  version (1)
//       12     4  bytes per token: 2 (uint16, when vocab_size <= 65536) or 4 (int32)
//       16     8  vocab_size (every token is in [0, vocab_size))
//       24     8  token_count
//       32     4  CRC-32C of the payload (the token_count tokens)
//       36    24  reserved, zero
//       60     4  CRC-32C of header bytes [0, 60)
//       64     -  payload
// Opening a file checks all of it (a linear pass): the size against the count,
// both checksums, and every token against the vocabulary.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/check.h"
#include "core/io/atomic_file.h"

namespace trident::data {

inline constexpr char kTokenFileMagic[8] = {'T', 'R', 'D', 'T', 'O', 'K', 'E', 'N'};
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr int64_t kTokenFileHeaderBytes = 64;

// 2 when every id of the vocabulary fits a uint16, else 4.
int TokenWidthForVocab(int64_t vocab_size);

// Streams tokens into a new token file, atomically: nothing appears at `path`
// until Finish() succeeds.
class TokenFileWriter {
 public:
  // vocab_size in [1, 2^31 - 1].
  static absl::StatusOr<TokenFileWriter> Create(const std::string& path, int64_t vocab_size);

  // Refuses (and writes nothing of the call) a token outside [0, vocab_size),
  // naming its position in the file and its value.
  absl::Status Append(absl::Span<const int32_t> tokens);
  absl::Status Finish();

  int64_t token_count() const { return token_count_; }

 private:
  TokenFileWriter(io::AtomicFileWriter file, int64_t vocab_size)
      : file_(std::move(file)), vocab_size_(vocab_size) {}

  io::AtomicFileWriter file_;
  int64_t vocab_size_;
  int64_t token_count_ = 0;
  uint32_t payload_crc_ = 0;
  std::string buffer_;
};

// Writes `tokens` as a token file in one call.
absl::Status WriteTokenFile(const std::string& path, int64_t vocab_size,
                            absl::Span<const int32_t> tokens);

// A validated token file, memory-mapped read-only. Move-only.
class TokenFile {
 public:
  static absl::StatusOr<TokenFile> Open(const std::string& path);

  TokenFile(TokenFile&& other) noexcept;
  TokenFile& operator=(TokenFile&& other) noexcept;
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  ~TokenFile();

  const std::string& path() const { return path_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t size() const { return token_count_; }  // Number of tokens.
  int token_width() const { return token_width_; }
  uint32_t payload_crc32c() const { return payload_crc_; }

  int32_t token(int64_t index) const {
    TRIDENT_CHECK(index >= 0 && index < token_count_) << index << " of " << token_count_;
    return TokenAt(index);
  }

  // Copies tokens [begin, begin + out.size()) as int32; the range must lie in
  // the file (a programming error otherwise).
  void CopyTokens(int64_t begin, absl::Span<int32_t> out) const;

 private:
  TokenFile() = default;
  int32_t TokenAt(int64_t index) const;
  void Unmap();

  std::string path_;
  const unsigned char* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  const unsigned char* payload_ = nullptr;
  int64_t vocab_size_ = 0;
  int64_t token_count_ = 0;
  int token_width_ = 0;
  uint32_t payload_crc_ = 0;
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_TOKEN_FILE_H_
