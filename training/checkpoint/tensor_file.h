#ifndef TRIDENT_TRAINING_CHECKPOINT_TENSOR_FILE_H_
#define TRIDENT_TRAINING_CHECKPOINT_TENSOR_FILE_H_

// A self-describing, self-checking binary file of named tensors: the unit a
// checkpoint stores per rank. Every field is little-endian.
//
//   offset            size  field
//   0                 8     magic "\x89TRDTNS\n" (the high byte and newline catch
//                           text-mode mangling, as in PNG)
//   8                 4     format version (1)
//   12                4     H = header size in bytes
//   16                8     total file size in bytes
//   24                H     header: u32 tensor count, then per tensor
//                             u32 name length, name bytes (UTF-8),
//                             u8 dtype code, u8 rank, u16 zero,
//                             i64 dims[rank], u64 byte offset, u64 byte size,
//                             u32 CRC-32C of the tensor's bytes
//   24+H              4     CRC-32C of bytes [0, 24+H)
//   ...                     payloads at ascending 64-byte aligned offsets,
//                           zero padding between them
//   size-20           8     trailer magic "\x89TRDEND\n"
//   size-12           8     total file size again
//   size-4            4     CRC-32C of bytes [0, size-4)
//
// The reader checks, in order: magic, version, that the header fits, the header
// CRC, the recorded size against the real one (truncation), every tensor's
// offset and size against the file, unique names, each tensor's CRC (naming the
// tensor), then the trailer and the whole-file CRC. Files are written with
// AtomicFileWriter, so a crash never leaves a partial file at the final path.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::checkpoint {

inline constexpr uint32_t kTensorFileVersion = 1;
inline constexpr uint64_t kTensorFileAlignment = 64;

// What identifies a written file: its size and whole-file CRC (the trailer's).
struct TensorFileSummary {
  uint64_t file_size = 0;
  uint32_t file_crc32c = 0;
};

// Writes `tensors` (valid, unique names) to `path` atomically, in the given order.
absl::StatusOr<TensorFileSummary> WriteTensorFile(const std::string& path,
                                                  absl::Span<const TensorBlob> tensors);

// Reads and verifies the whole file. The TensorSet's source is
// "tensor file '<path>'".
absl::StatusOr<TensorSet> ReadTensorFile(const std::string& path);

// Verifies magic, version, header CRC, size and trailer without reading the
// payloads, and returns the size and whole-file CRC the trailer records.
absl::StatusOr<TensorFileSummary> ReadTensorFileSummary(const std::string& path);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_TENSOR_FILE_H_
