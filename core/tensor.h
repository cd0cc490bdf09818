#ifndef TRIDENT_CORE_TENSOR_H_
#define TRIDENT_CORE_TENSOR_H_

// Tensor: a typed, shaped view of device memory (DESIGN.md rule 3).
//
// Conventions
// - A Tensor is a handle, like a shared_ptr: copying it copies the view, not the
//   elements; views (Slice, Select, Reshape, Flat, Transpose) share the storage.
//   Constness is about the view (shape, strides, offset), not the elements: ops
//   write their outputs through `const Tensor&` parameters, as PyTorch's out=
//   variants do.
// - Shapes are int64 dims, row-major (the last dim varies fastest), at most
//   kMaxDims dims; a 0-dim tensor is a scalar with one element. Strides are in
//   elements. A tensor is contiguous when its strides are the row-major strides
//   of its shape (dims of size 1 ignored).
// - Slicing dim 0 of a contiguous tensor gives a contiguous view; slicing any
//   other dim gives a strided view. Which ops accept strided views is stated in
//   core/ops/ops.h (in short: Copy takes any strides, Gemm/BatchedGemm take
//   matrices with unit column stride and any row stride, the rest want
//   contiguous tensors; Contiguous() makes one).
// - Storage comes from an Allocator (core/device.h) and returns to it when the
//   last view is gone. Empty() leaves elements uninitialised; Zeros() clears them.
// - data<T>() is for kernels and checks the dtype; it does not check the device
//   (ops check that every tensor is on the context's device before dispatching).
// - FromVector / CopyFrom / ToVector move elements between host vectors and the
//   tensor's device synchronously: for tests, loaders and checkpoints, not for
//   the hot path.
// - Misuse (wrong dtype, out-of-range slice, bad reshape) is a programming error
//   and aborts with a CHECK message naming the tensor's dtype and shape.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "core/check.h"
#include "core/device.h"
#include "core/dtype.h"

namespace trident {

inline constexpr int kMaxDims = 6;

using Shape = absl::InlinedVector<int64_t, kMaxDims>;

// "[2, 3, 4]".
std::string ShapeToString(absl::Span<const int64_t> shape);
// Product of dims (1 for a scalar).
int64_t NumElements(absl::Span<const int64_t> shape);
// Row-major strides of `shape`, in elements.
Shape ContiguousStrides(absl::Span<const int64_t> shape);

// A block of device memory, returned to its allocator when destroyed. External
// storage (Tensor::FromExternal) is not owned and never freed.
class Storage {
 public:
  Storage(std::shared_ptr<Allocator> allocator, size_t bytes);
  Storage(void* external_data, size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  // Null for external storage.
  const std::shared_ptr<Allocator>& allocator() const { return allocator_; }

 private:
  std::shared_ptr<Allocator> allocator_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

class Tensor {
 public:
  // An undefined tensor (no storage); defined() is false.
  Tensor() = default;

  // Factories. `shape` dims must be >= 0.
  static Tensor Empty(absl::Span<const int64_t> shape, DType dtype, Device device = Device::Cpu());
  static Tensor Empty(absl::Span<const int64_t> shape, DType dtype,
                      std::shared_ptr<Allocator> allocator);
  static Tensor Zeros(absl::Span<const int64_t> shape, DType dtype, Device device = Device::Cpu());
  static Tensor Zeros(absl::Span<const int64_t> shape, DType dtype,
                      std::shared_ptr<Allocator> allocator);
  // A tensor of `shape` holding `values` (values.size() == NumElements(shape)).
  template <typename T>
  static Tensor FromVector(absl::Span<const T> values, absl::Span<const int64_t> shape,
                           Device device = Device::Cpu());
  template <typename T>
  static Tensor FromVector(const std::vector<T>& values, absl::Span<const int64_t> shape,
                           Device device = Device::Cpu()) {
    return FromVector(absl::MakeConstSpan(values), shape, device);
  }
  template <typename T>
  static Tensor FromVector(std::initializer_list<T> values, absl::Span<const int64_t> shape,
                           Device device = Device::Cpu()) {
    return FromVector(absl::MakeConstSpan(values.begin(), values.size()), shape, device);
  }
  // A contiguous view of memory the caller owns and keeps alive (e.g. a
  // memory-mapped token file); never freed by the tensor.
  static Tensor FromExternal(void* data, absl::Span<const int64_t> shape, DType dtype,
                             Device device = Device::Cpu());

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  // Size of dim `d`; negative d counts from the end (-1 is the last dim).
  int64_t dim(int d) const { return shape_[NormalizeDim(d)]; }
  const Shape& strides() const { return strides_; }
  int64_t stride(int d) const { return strides_[NormalizeDim(d)]; }
  int64_t numel() const { return numel_; }
  size_t element_size() const { return DTypeSize(dtype_); }
  // numel() * element_size(): the bytes a contiguous copy occupies.
  size_t nbytes() const { return static_cast<size_t>(numel_) * element_size(); }
  bool is_contiguous() const { return contiguous_; }

  // Typed pointer to element 0 of this view, for kernels. Checks T against dtype().
  template <typename T>
  T* data() const {
    TRIDENT_CHECK(DTypeOf<T>::value == dtype_)
        << "tensor " << DebugString() << " accessed as " << DTypeName(DTypeOf<T>::value);
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  const std::shared_ptr<Storage>& storage() const { return storage_; }
  int64_t storage_offset_bytes() const { return offset_bytes_; }
  bool SharesStorageWith(const Tensor& other) const {
    return storage_ != nullptr && storage_ == other.storage_;
  }

  // Views (share storage, never copy).
  // Elements [start, start + length) of dim `dim`.
  Tensor Slice(int dim, int64_t start, int64_t length) const;
  // Index `index` of dim `dim`, which is removed from the shape.
  Tensor Select(int dim, int64_t index) const;
  // Same elements, new shape; one dim may be -1 (inferred). Contiguous only.
  Tensor Reshape(absl::Span<const int64_t> shape) const;
  // Elements [start, start + count) of a contiguous tensor, as a 1-D view.
  Tensor Flat(int64_t start, int64_t count) const;
  // The whole contiguous tensor as a 1-D view.
  Tensor Flatten() const { return Flat(0, numel_); }
  // Dims d0 and d1 swapped (a strided view).
  Tensor Transpose(int d0, int d1) const;

  // Host transfers (synchronous). CopyFrom needs a contiguous tensor and
  // values.size() == numel(); ToVector reads any strides on the CPU, contiguous
  // tensors elsewhere.
  template <typename T>
  void CopyFrom(absl::Span<const T> values) const;
  template <typename T>
  void CopyFrom(const std::vector<T>& values) const {
    CopyFrom(absl::MakeConstSpan(values));
  }
  template <typename T>
  std::vector<T> ToVector() const;
  // A float tensor's values widened to fp32 (exact from bf16 and fp16),
  // wherever it lives: what tests compare.
  std::vector<float> ToFloatVector() const;
  // The single element of a one-element tensor.
  template <typename T>
  T Item() const {
    TRIDENT_CHECK_EQ(numel_, 1) << "Item() of " << DebugString();
    return ToVector<T>()[0];
  }

  // "fp32[2, 3] cpu" plus " (strided)" for non-contiguous views.
  std::string DebugString() const;

 private:
  int NormalizeDim(int d) const;
  void UpdateDerived();
  void CopyFromHostBytes(const void* src, size_t bytes) const;
  void CopyToHostBytes(void* dst) const;  // nbytes() into dst, any strides on CPU.

  std::shared_ptr<Storage> storage_;
  int64_t offset_bytes_ = 0;
  DType dtype_ = DType::kFloat32;
  Device device_;
  Shape shape_;
  Shape strides_;
  int64_t numel_ = 0;
  bool contiguous_ = true;
};

// Implementation of the templates.

template <typename T>
Tensor Tensor::FromVector(absl::Span<const T> values, absl::Span<const int64_t> shape,
                          Device device) {
  Tensor t = Empty(shape, DTypeOf<T>::value, device);
  t.CopyFrom(values);
  return t;
}

template <typename T>
void Tensor::CopyFrom(absl::Span<const T> values) const {
  TRIDENT_CHECK(DTypeOf<T>::value == dtype_)
      << "CopyFrom " << DTypeName(DTypeOf<T>::value) << " values into " << DebugString();
  TRIDENT_CHECK_EQ(static_cast<int64_t>(values.size()), numel_)
      << "CopyFrom element count into " << DebugString();
  CopyFromHostBytes(values.data(), values.size() * sizeof(T));
}

template <typename T>
std::vector<T> Tensor::ToVector() const {
  TRIDENT_CHECK(DTypeOf<T>::value == dtype_)
      << "ToVector<" << DTypeName(DTypeOf<T>::value) << "> of " << DebugString();
  std::vector<T> out(static_cast<size_t>(numel_));
  CopyToHostBytes(out.data());
  return out;
}

}  // namespace trident

#endif  // TRIDENT_CORE_TENSOR_H_
