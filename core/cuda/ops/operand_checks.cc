#include "core/cuda/ops/operand_checks.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

absl::Status Invalid(absl::string_view op, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " ", what));
}

}  // namespace

bool IsFloatStorage(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kBFloat16 || dtype == DType::kFloat16;
}

absl::Status CheckFloatOperand(absl::string_view op, absl::string_view name, const Tensor& t) {
  if (!t.defined()) return Invalid(op, name, "is undefined");
  if (!IsFloatStorage(t.dtype())) {
    return Invalid(op, name,
                   absl::StrCat("has dtype ", DTypeName(t.dtype()), ", expected fp32, bf16 or fp16"));
  }
  if (!t.is_contiguous()) {
    return Invalid(op, name, absl::StrCat("must be contiguous, got ", t.DebugString()));
  }
  return absl::OkStatus();
}

absl::Status CheckOperand(absl::string_view op, absl::string_view name, const Tensor& t,
                          DType dtype) {
  if (!t.defined()) return Invalid(op, name, "is undefined");
  if (!t.is_contiguous()) {
    return Invalid(op, name, absl::StrCat("must be contiguous, got ", t.DebugString()));
  }
  return CheckDType(op, name, t, dtype);
}

absl::Status CheckShape(absl::string_view op, absl::string_view name, const Tensor& t,
                        const Shape& expected) {
  if (t.shape() == expected) return absl::OkStatus();
  return Invalid(
      op, name,
      absl::StrCat("has shape ", ShapeToString(t.shape()), ", expected ", ShapeToString(expected)));
}

absl::Status CheckNumel(absl::string_view op, absl::string_view name, const Tensor& t,
                        int64_t expected) {
  if (t.numel() == expected) return absl::OkStatus();
  return Invalid(op, name,
                 absl::StrCat("has ", t.numel(), " elements (shape ", ShapeToString(t.shape()),
                              "), expected ", expected));
}

absl::Status CheckDType(absl::string_view op, absl::string_view name, const Tensor& t,
                        DType dtype) {
  if (t.dtype() == dtype) return absl::OkStatus();
  return Invalid(op, name,
                 absl::StrCat("has dtype ", DTypeName(t.dtype()), ", expected ", DTypeName(dtype)));
}

absl::Status CheckSameDType(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref) {
  if (t.dtype() == ref.dtype()) return absl::OkStatus();
  return Invalid(op, name,
                 absl::StrCat("has dtype ", DTypeName(t.dtype()), ", expected ",
                              DTypeName(ref.dtype()), " (the dtype of ", ref_name, ")"));
}

absl::Status CheckSameShape(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref) {
  if (t.shape() == ref.shape()) return absl::OkStatus();
  return Invalid(op, name,
                 absl::StrCat("has shape ", ShapeToString(t.shape()), ", expected ",
                              ShapeToString(ref.shape()), " (the shape of ", ref_name, ")"));
}

absl::Status CheckRowOperand(absl::string_view op, absl::string_view row_name, const Tensor& row,
                             absl::string_view name, const Tensor& t) {
  if (row.ndim() != 1) {
    return Invalid(op, row_name,
                   absl::StrCat("has shape ", ShapeToString(row.shape()), ", expected one dim"));
  }
  if (t.ndim() < 1 || t.dim(-1) != row.dim(0)) {
    return Invalid(op, name,
                   absl::StrCat("has shape ", ShapeToString(t.shape()), ": its last dim must be ",
                                row.dim(0), " (the length of ", row_name, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckOnOneCudaDevice(absl::string_view op,
                                  std::initializer_list<NamedTensor> tensors) {
  const NamedTensor* first = nullptr;
  for (const NamedTensor& named : tensors) {
    const Device device = named.tensor.device();
    if (!device.is_cuda()) {
      return Invalid(op, named.name,
                     absl::StrCat("is on ", device.ToString(), ", expected a CUDA device"));
    }
    if (first == nullptr) {
      first = &named;
    } else if (device != first->tensor.device()) {
      return Invalid(op, named.name,
                     absl::StrCat("is on ", device.ToString(), ", expected ",
                                  first->tensor.device().ToString(), " (the device of ",
                                  first->name, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOnOneCudaDevice(absl::string_view op, absl::string_view list_name,
                                  absl::Span<const Tensor> tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string name = absl::StrCat(list_name, "[", i, "]");
    RETURN_IF_ERROR(CheckOnOneCudaDevice(op, {{name, tensors[i]}}));
    if (i > 0 && tensors[i].device() != tensors[0].device()) {
      return Invalid(op, name,
                     absl::StrCat("is on ", tensors[i].device().ToString(), ", expected ",
                                  tensors[0].device().ToString(), " (the device of ", list_name,
                                  "[0])"));
    }
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
