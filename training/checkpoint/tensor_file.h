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
#include <memory>
#include <string>
#include <vector>

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

// Random access to a verified file's tensors, for a reader that needs only
// byte ranges of some of them (loading under another layout). Open checks the
// frame (magic, version, header CRC, size, trailer) and every header entry as
// ReadTensorFile does, but reads no payload; ReadRange then reads bytes of one
// tensor. A range read cannot check the tensor's CRC (it covers the whole
// tensor): callers that need it call VerifyTensor, or check the whole file
// against a recorded size and CRC first.
class TensorFileIndex {
 public:
  struct Tensor {
    std::string name;
    DType dtype = DType::kFloat32;
    std::vector<int64_t> shape;
    uint64_t offset = 0;  // of the payload in the file
    uint64_t size = 0;    // bytes
    uint32_t crc32c = 0;
  };

  // Errors name the file ("tensor file '<path>': ...").
  static absl::StatusOr<TensorFileIndex> Open(const std::string& path);

  TensorFileIndex(TensorFileIndex&&) noexcept;
  TensorFileIndex& operator=(TensorFileIndex&&) noexcept;
  ~TensorFileIndex();

  const std::string& path() const;
  const TensorFileSummary& summary() const { return summary_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  // Null when the file has no tensor of that name.
  const Tensor* Find(const std::string& name) const;

  // Fills `destination` with bytes [byte_offset, byte_offset + destination.size())
  // of tensor `name`'s payload. NOT_FOUND naming the file and the tensor when
  // it is absent; OUT_OF_RANGE naming both and the range when the range does
  // not lie inside the tensor.
  absl::Status ReadRange(const std::string& name, uint64_t byte_offset,
                         absl::Span<std::byte> destination) const;

  // Reads tensor `name` whole and checks its CRC-32C (DATA_LOSS naming the
  // file and the tensor).
  absl::Status VerifyTensor(const std::string& name) const;

  // Streams the whole file (in bounded chunks, keeping nothing) and checks
  // its CRC-32C against the trailer's (DATA_LOSS naming the file).
  absl::Status VerifyFile() const;

 private:
  struct File;
  TensorFileIndex(std::unique_ptr<File> file, TensorFileSummary summary,
                  std::vector<Tensor> tensors);

  std::unique_ptr<File> file_;
  TensorFileSummary summary_;
  std::vector<Tensor> tensors_;
};

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_TENSOR_FILE_H_
