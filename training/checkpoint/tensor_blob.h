#ifndef TRIDENT_TRAINING_CHECKPOINT_TENSOR_BLOB_H_
#define TRIDENT_TRAINING_CHECKPOINT_TENSOR_BLOB_H_

// The plain tensor types the checkpoint and safetensors files speak: a borrowed
// view for writing, an owning copy for reading, and a by-name collection of the
// latter. They know nothing of core::Tensor; the trainer adapts its tensors to
// them (bytes are little-endian, row-major, densely packed).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/dtype.h"

namespace trident::checkpoint {

// A named tensor to write. `bytes` is borrowed and must outlive the write call.
struct TensorBlob {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;  // {} is a scalar (one element).
  absl::Span<const std::byte> bytes;
};

// A named tensor read from a file; owns its bytes.
struct LoadedTensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;

  // A blob borrowing this tensor's bytes (to write it again).
  TensorBlob View() const { return TensorBlob{name, dtype, shape, bytes}; }
  int64_t num_elements() const;
};

// Number of elements of `shape`; an error for a negative dimension or a product
// that overflows int64.
absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape);

// "[64, 192]"; "[]" for a scalar.
std::string ShapeToString(absl::Span<const int64_t> shape);

// A blob is valid when its name is non-empty, its dimensions are non-negative,
// and its byte count is exactly elements * DTypeSize(dtype).
absl::Status ValidateBlob(const TensorBlob& blob);

// Checks a set of blobs for validity and unique names (what both writers need).
absl::Status ValidateBlobs(absl::Span<const TensorBlob> blobs);

// Tensors read from one file, found by name. `source` describes where they came
// from (e.g. "tensor file '/ckpt/rank_00000.tensors'") for error messages.
class TensorSet {
 public:
  // Fails on duplicate names.
  static absl::StatusOr<TensorSet> Create(std::string source, std::vector<LoadedTensor> tensors);

  const std::string& source() const { return source_; }
  // Renames the source, e.g. to "checkpoint '/ckpt' rank 0" once a caller knows more.
  void set_source(std::string source) { source_ = std::move(source); }
  // In file order.
  absl::Span<const LoadedTensor> tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }

  // nullptr when absent.
  const LoadedTensor* Find(absl::string_view name) const;
  // NotFound naming the source and the tensor when absent.
  absl::StatusOr<const LoadedTensor*> Get(absl::string_view name) const;
  // As Get, and the tensor must have exactly this dtype and shape, e.g.
  // "<source> has tensor 'h.0.attn.c_attn.weight' with shape [64, 192], expected [64, 96]".
  absl::StatusOr<const LoadedTensor*> GetExpected(absl::string_view name, DType dtype,
                                                  absl::Span<const int64_t> shape) const;
  // GetExpected, then copies the bytes into `destination`, whose size must match.
  absl::Status CopyExpected(absl::string_view name, DType dtype, absl::Span<const int64_t> shape,
                            absl::Span<std::byte> destination) const;

 private:
  TensorSet(std::string source, std::vector<LoadedTensor> tensors,
            absl::flat_hash_map<std::string, size_t> index)
      : source_(std::move(source)), tensors_(std::move(tensors)), index_(std::move(index)) {}

  std::string source_;
  std::vector<LoadedTensor> tensors_;
  absl::flat_hash_map<std::string, size_t> index_;
};

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_TENSOR_BLOB_H_
