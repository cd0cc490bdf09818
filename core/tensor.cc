#include "core/tensor.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trident {

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape ContiguousStrides(absl::Span<const int64_t> shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Storage::Storage(std::shared_ptr<Allocator> allocator, size_t bytes)
    : allocator_(std::move(allocator)), bytes_(bytes), device_(allocator_->device()) {
  data_ = allocator_->Allocate(bytes);
}

Storage::Storage(void* external_data, size_t bytes, Device device)
    : data_(external_data), bytes_(bytes), device_(device) {}

Storage::~Storage() {
  if (allocator_ != nullptr) allocator_->Free(data_, bytes_);
}

namespace {

void CheckShape(absl::Span<const int64_t> shape) {
  TRIDENT_CHECK_LE(static_cast<int>(shape.size()), kMaxDims)
      << "tensor of shape " << ShapeToString(shape) << " has too many dims";
  for (int64_t d : shape) {
    TRIDENT_CHECK_GE(d, 0) << "negative dim in shape " << ShapeToString(shape);
  }
}

// The allocator that moves bytes between the host and `storage`'s device.
std::shared_ptr<Allocator> TransferAllocator(const Storage& storage) {
  if (storage.allocator() != nullptr) return storage.allocator();
  return DefaultAllocator(storage.device());
}

}  // namespace

Tensor Tensor::Empty(absl::Span<const int64_t> shape, DType dtype, Device device) {
  return Empty(shape, dtype, DefaultAllocator(device));
}

Tensor Tensor::Empty(absl::Span<const int64_t> shape, DType dtype,
                     std::shared_ptr<Allocator> allocator) {
  TRIDENT_CHECK(allocator != nullptr) << "Tensor::Empty without an allocator";
  CheckShape(shape);
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = allocator->device();
  t.shape_.assign(shape.begin(), shape.end());
  t.strides_ = ContiguousStrides(shape);
  t.UpdateDerived();
  t.storage_ = std::make_shared<Storage>(std::move(allocator), t.nbytes());
  return t;
}

Tensor Tensor::Zeros(absl::Span<const int64_t> shape, DType dtype, Device device) {
  return Zeros(shape, dtype, DefaultAllocator(device));
}

Tensor Tensor::Zeros(absl::Span<const int64_t> shape, DType dtype,
                     std::shared_ptr<Allocator> allocator) {
  Tensor t = Empty(shape, dtype, std::move(allocator));
  t.storage_->allocator()->SetZero(t.raw_data(), t.nbytes());
  return t;
}

Tensor Tensor::FromExternal(void* data, absl::Span<const int64_t> shape, DType dtype,
                            Device device) {
  CheckShape(shape);
  Tensor t;
  t.dtype_ = dtype;
  t.device_ = device;
  t.shape_.assign(shape.begin(), shape.end());
  t.strides_ = ContiguousStrides(shape);
  t.UpdateDerived();
  TRIDENT_CHECK(data != nullptr || t.numel_ == 0)
      << "FromExternal with null data for shape " << ShapeToString(shape);
  t.storage_ = std::make_shared<Storage>(data, t.nbytes(), device);
  return t;
}

void* Tensor::raw_data() const {
  TRIDENT_CHECK(defined()) << "data of an undefined tensor";
  if (storage_->data() == nullptr) return nullptr;  // Zero-size.
  return static_cast<char*>(storage_->data()) + offset_bytes_;
}

int Tensor::NormalizeDim(int d) const {
  const int n = ndim();
  const int normalized = d < 0 ? d + n : d;
  TRIDENT_CHECK(normalized >= 0 && normalized < n)
      << "dim " << d << " is out of range for " << DebugString();
  return normalized;
}

void Tensor::UpdateDerived() {
  numel_ = NumElements(shape_);
  contiguous_ = true;
  int64_t expected = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (shape_[i] == 1) continue;  // Any stride works for a dim of size 1.
    if (strides_[i] != expected) {
      contiguous_ = false;
      break;
    }
    expected *= shape_[i];
  }
}

Tensor Tensor::Slice(int dim, int64_t start, int64_t length) const {
  const int d = NormalizeDim(dim);
  TRIDENT_CHECK(start >= 0 && length >= 0 && start + length <= shape_[d])
      << "Slice(dim=" << dim << ", start=" << start << ", length=" << length << ") of "
      << DebugString();
  Tensor view = *this;
  view.offset_bytes_ += start * strides_[d] * static_cast<int64_t>(element_size());
  view.shape_[d] = length;
  view.UpdateDerived();
  return view;
}

Tensor Tensor::Select(int dim, int64_t index) const {
  const int d = NormalizeDim(dim);
  TRIDENT_CHECK(index >= 0 && index < shape_[d])
      << "Select(dim=" << dim << ", index=" << index << ") of " << DebugString();
  Tensor view = *this;
  view.offset_bytes_ += index * strides_[d] * static_cast<int64_t>(element_size());
  view.shape_.erase(view.shape_.begin() + d);
  view.strides_.erase(view.strides_.begin() + d);
  view.UpdateDerived();
  return view;
}

Tensor Tensor::Reshape(absl::Span<const int64_t> shape) const {
  TRIDENT_CHECK(contiguous_) << "Reshape of a strided view " << DebugString()
                             << " (make it contiguous first)";
  Shape new_shape(shape.begin(), shape.end());
  int inferred = -1;
  int64_t known = 1;
  for (int i = 0; i < static_cast<int>(new_shape.size()); ++i) {
    if (new_shape[i] == -1) {
      TRIDENT_CHECK_EQ(inferred, -1)
          << "Reshape to " << ShapeToString(shape) << " has more than one -1";
      inferred = i;
    } else {
      TRIDENT_CHECK_GE(new_shape[i], 0) << "Reshape to " << ShapeToString(shape);
      known *= new_shape[i];
    }
  }
  if (inferred >= 0) {
    TRIDENT_CHECK(known > 0 && numel_ % known == 0)
        << "Reshape of " << DebugString() << " to " << ShapeToString(shape);
    new_shape[inferred] = numel_ / known;
  }
  CheckShape(new_shape);
  TRIDENT_CHECK_EQ(NumElements(new_shape), numel_)
      << "Reshape of " << DebugString() << " to " << ShapeToString(shape)
      << " changes the element count";
  Tensor view = *this;
  view.shape_ = new_shape;
  view.strides_ = ContiguousStrides(new_shape);
  view.UpdateDerived();
  return view;
}

Tensor Tensor::Flat(int64_t start, int64_t count) const {
  TRIDENT_CHECK(contiguous_) << "Flat view of a strided view " << DebugString();
  TRIDENT_CHECK(start >= 0 && count >= 0 && start + count <= numel_)
      << "Flat(start=" << start << ", count=" << count << ") of " << DebugString();
  Tensor view = *this;
  view.offset_bytes_ += start * static_cast<int64_t>(element_size());
  view.shape_ = Shape{count};
  view.strides_ = Shape{1};
  view.UpdateDerived();
  return view;
}

Tensor Tensor::Transpose(int d0, int d1) const {
  const int a = NormalizeDim(d0);
  const int b = NormalizeDim(d1);
  Tensor view = *this;
  std::swap(view.shape_[a], view.shape_[b]);
  std::swap(view.strides_[a], view.strides_[b]);
  view.UpdateDerived();
  return view;
}

void Tensor::CopyFromHostBytes(const void* src, size_t bytes) const {
  TRIDENT_CHECK(contiguous_) << "CopyFrom into a strided view " << DebugString();
  TransferAllocator(*storage_)->CopyFromHost(raw_data(), src, bytes);
}

void Tensor::CopyToHostBytes(void* dst) const {
  TRIDENT_CHECK(defined()) << "ToVector of an undefined tensor";
  if (numel_ == 0) return;
  if (contiguous_) {
    TransferAllocator(*storage_)->CopyToHost(dst, raw_data(), nbytes());
    return;
  }
  TRIDENT_CHECK(device_.is_cpu()) << "ToVector of a strided view on " << device_
                                  << ": make it contiguous first";
  // Walk the view in row-major order with an odometer over the dims.
  const size_t esize = element_size();
  const char* base = static_cast<const char*>(raw_data());
  char* out = static_cast<char*>(dst);
  const int n = ndim();
  Shape index(n, 0);
  for (int64_t i = 0; i < numel_; ++i) {
    int64_t offset = 0;
    for (int d = 0; d < n; ++d) offset += index[d] * strides_[d];
    std::memcpy(out + i * esize, base + offset * static_cast<int64_t>(esize), esize);
    for (int d = n - 1; d >= 0; --d) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
}

std::string Tensor::DebugString() const {
  if (!defined()) return "undefined";
  return absl::StrCat(DTypeName(dtype_), ShapeToString(shape_), " ", device_.ToString(),
                      contiguous_ ? "" : " (strided)");
}

std::vector<float> Tensor::ToFloatVector() const {
  switch (dtype_) {
    case DType::kBFloat16: {
      std::vector<float> out;
      out.reserve(static_cast<size_t>(numel_));
      for (BFloat16 v : ToVector<BFloat16>()) out.push_back(ToFloat(v));
      return out;
    }
    case DType::kFloat16: {
      std::vector<float> out;
      out.reserve(static_cast<size_t>(numel_));
      for (Float16 v : ToVector<Float16>()) out.push_back(ToFloat(v));
      return out;
    }
    default:
      return ToVector<float>();  // Checks the dtype.
  }
}

}  // namespace trident
