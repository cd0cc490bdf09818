#ifndef TRIDENT_TRAINING_DATA_TOKEN_FILE_H_
#define TRIDENT_TRAINING_DATA_TOKEN_FILE_H_

// Token files: what //tools:prepare_data writes and the loader reads.
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
//
// Reading: TokenFile keeps the file descriptor open and reads each window with
// pread(2); nothing is memory-mapped. A mapping turns a file that is truncated
// under a running job into SIGBUS at the next touch of a page past the new end
// (MAP_PRIVATE does not help: pages not yet copied still come from the file),
// and copying the whole file into memory costs its size once per rank (eight
// copies in the default job). pread costs one system call per window of
// seq_len + 1 tokens, small next to a training step, and fails softly:
//   - a file replaced by rename (what //tools:prepare_data and every atomic
//     writer do) or deleted: the descriptor still names the old inode, so the
//     job keeps reading the snapshot it validated;
//   - a file truncated or rewritten in place: a short read, or a token outside
//     the vocabulary, is an error naming the file and the token range, which
//     ends the job with that message instead of a signal.
// A rewrite in place with other in-vocabulary tokens is not detected (the
// windows would need a checksum each); write token files atomically.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
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

// A validated token file, read with pread (see above). Move-only; the const
// methods may be called from several threads at once.
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

  // Copies tokens [begin, begin + out.size()) as int32; the range must lie in
  // the file (a programming error otherwise). Errors (naming the file): a read
  // error, a file truncated since Open, a token outside the vocabulary.
  absl::Status CopyTokens(int64_t begin, absl::Span<int32_t> out) const;

 private:
  TokenFile() = default;
  void Close();
  // Up to `bytes` bytes at `offset` (fewer only at the end of the file).
  absl::StatusOr<int64_t> ReadAt(int64_t offset, unsigned char* out, int64_t bytes) const;
  // Tokens [begin, begin + count) as stored; an error when the file is short.
  absl::Status ReadPayload(int64_t begin, int64_t count, unsigned char* out) const;
  // Stored tokens -> int32.
  void Decode(const unsigned char* raw, absl::Span<int32_t> out) const;

  std::string path_;
  int fd_ = -1;
  int64_t vocab_size_ = 0;
  int64_t token_count_ = 0;
  int token_width_ = 0;
  uint32_t payload_crc_ = 0;
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_TOKEN_FILE_H_
