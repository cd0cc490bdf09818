#ifndef TRIDENT_TRAINING_CHECKPOINT_SAFETENSORS_H_
#define TRIDENT_TRAINING_CHECKPOINT_SAFETENSORS_H_

// The Hugging Face safetensors format (github.com/huggingface/safetensors):
//
//   8 bytes    N, the header length, unsigned little-endian
//   N bytes    UTF-8 JSON header, padded with spaces so N % 8 == 0:
//              {"__metadata__":{"format":"pt",...},
//               "<name>":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
//   rest       the tensors' bytes (little-endian, row-major), contiguous, with
//              data_offsets relative to the start of this region
//
// The writer reproduces the reference serializer byte for byte: tensors sorted
// by dtype (the reference's enum order, descending: I64, F32, I32, BF16, F16)
// and then by name, the JSON compact with keys in that order after
// "__metadata__" (whose own keys we sort; the reference's HashMap order is
// arbitrary), members "dtype", "shape", "data_offsets".
//
// The reader accepts any member order, and checks that the header fits the file
// (and is at most 100 MB, as the reference requires), is UTF-8 JSON of the right
// shape, every dtype is one we support (F32, BF16, F16, I32, I64), every byte
// range matches its shape, and the ranges tile the data region exactly: no gap,
// no overlap, nothing left over.

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "training/checkpoint/tensor_blob.h"

namespace trident::checkpoint {

using SafetensorsMetadata = std::map<std::string, std::string>;

// "F32", "BF16", "F16", "I32", "I64".
absl::string_view SafetensorsDTypeName(DType dtype);
absl::StatusOr<DType> ParseSafetensorsDType(absl::string_view name);

// The padded JSON header (without the 8-byte length) for these tensors.
// "format": "pt" is added to `metadata` unless it names a format itself.
absl::StatusOr<std::string> SafetensorsHeader(absl::Span<const TensorBlob> tensors,
                                              const SafetensorsMetadata& metadata = {});

// The whole file in memory (small files and tests).
absl::StatusOr<std::string> SerializeSafetensors(absl::Span<const TensorBlob> tensors,
                                                 const SafetensorsMetadata& metadata = {});

// Streams the file to `path` atomically.
absl::Status WriteSafetensors(const std::string& path, absl::Span<const TensorBlob> tensors,
                              const SafetensorsMetadata& metadata = {});

struct SafetensorsContents {
  TensorSet tensors;  // in data order
  SafetensorsMetadata metadata;
};

// Parses a whole file held in memory; `source` names it in errors.
absl::StatusOr<SafetensorsContents> ParseSafetensors(absl::string_view file_bytes,
                                                     absl::string_view source = "safetensors data");

// Reads a file, copying each tensor straight from the file (no second copy of
// the whole file in memory).
absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_SAFETENSORS_H_
