#include "training/checkpoint/tensor_blob.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace trident::checkpoint {

absl::StatusOr<int64_t> NumElements(absl::Span<const int64_t> shape) {
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t dim = shape[i];
    if (dim < 0) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeToString(shape), " has dimension ",
                                                     i, " = ", dim, "; dimensions must be >= 0"));
    }
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape), " has more elements than fit in int64"));
    }
    count *= dim;
  }
  return count;
}

int64_t LoadedTensor::num_elements() const {
  const absl::StatusOr<int64_t> count = NumElements(shape);
  return count.ok() ? *count : -1;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status ValidateBlob(const TensorBlob& blob) {
  if (blob.name.empty()) return absl::InvalidArgumentError("a tensor has an empty name");
  const absl::StatusOr<int64_t> count = NumElements(blob.shape);
  if (!count.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", blob.name, "': ", count.status().message()));
  }
  const int64_t element_size = static_cast<int64_t>(DTypeSize(blob.dtype));
  if (element_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", blob.name, "' has unknown dtype ",
                                                   static_cast<int>(blob.dtype)));
  }
  if (*count > std::numeric_limits<int64_t>::max() / element_size ||
      static_cast<uint64_t>(*count * element_size) != blob.bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", blob.name, "' has ", blob.bytes.size(), " bytes, but shape ",
        ShapeToString(blob.shape), " of ", DTypeName(blob.dtype), " needs ", *count, " x ",
        element_size, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateBlobs(absl::Span<const TensorBlob> blobs) {
  absl::flat_hash_set<absl::string_view> names;
  for (const TensorBlob& blob : blobs) {
    RETURN_IF_ERROR(ValidateBlob(blob));
    if (!names.insert(blob.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", blob.name, "' appears more than once"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorSet> TensorSet::Create(std::string source,
                                            std::vector<LoadedTensor> tensors) {
  absl::flat_hash_map<std::string, size_t> index;
  index.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!index.emplace(tensors[i].name, i).second) {
      return absl::DataLossError(
          absl::StrCat(source, " has tensor name '", tensors[i].name, "' more than once"));
    }
  }
  return TensorSet(std::move(source), std::move(tensors), std::move(index));
}

const LoadedTensor* TensorSet::Find(absl::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const LoadedTensor*> TensorSet::Get(absl::string_view name) const {
  const LoadedTensor* tensor = Find(name);
  if (tensor == nullptr) {
    return absl::NotFoundError(absl::StrCat(source_, " has no tensor '", name, "' (it holds ",
                                            tensors_.size(), " tensors)"));
  }
  return tensor;
}

absl::StatusOr<const LoadedTensor*> TensorSet::GetExpected(absl::string_view name, DType dtype,
                                                           absl::Span<const int64_t> shape) const {
  ASSIGN_OR_RETURN(const LoadedTensor* tensor, Get(name));
  if (tensor->dtype != dtype) {
    return absl::FailedPreconditionError(absl::StrCat(source_, " has tensor '", name,
                                                      "' with dtype ", DTypeName(tensor->dtype),
                                                      ", expected ", DTypeName(dtype)));
  }
  if (absl::MakeConstSpan(tensor->shape) != shape) {
    return absl::FailedPreconditionError(
        absl::StrCat(source_, " has tensor '", name, "' with shape ", ShapeToString(tensor->shape),
                     ", expected ", ShapeToString(shape)));
  }
  return tensor;
}

absl::Status TensorSet::CopyExpected(absl::string_view name, DType dtype,
                                     absl::Span<const int64_t> shape,
                                     absl::Span<std::byte> destination) const {
  ASSIGN_OR_RETURN(const LoadedTensor* tensor, GetExpected(name, dtype, shape));
  if (tensor->bytes.size() != destination.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' from ", source_, " has ", tensor->bytes.size(),
                     " bytes, but the destination holds ", destination.size()));
  }
  if (!destination.empty()) {
    std::memcpy(destination.data(), tensor->bytes.data(), destination.size());
  }
  return absl::OkStatus();
}

}  // namespace trident::checkpoint
