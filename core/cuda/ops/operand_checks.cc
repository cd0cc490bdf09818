#include "core/cuda/ops/operand_checks.h"

#include "absl/strings/str_cat.h"

namespace trident::cuda {
namespace {

absl::Status Refuse(absl::string_view op, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " ", what));
}

absl::Status CheckDefinedContiguous(absl::string_view op, absl::string_view name, const Tensor& t) {
  if (!t.defined()) return Refuse(op, name, "is undefined");
  if (!t.is_contiguous()) {
    return Refuse(op, name, absl::StrCat(t.DebugString(), " must be contiguous"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOperand(absl::string_view op, absl::string_view name, const Tensor& t,
                          DType dtype) {
  if (absl::Status s = CheckDefinedContiguous(op, name, t); !s.ok()) return s;
  if (t.dtype() != dtype) {
    return Refuse(
        op, name,
        absl::StrCat("has dtype ", DTypeName(t.dtype()), ", expected ", DTypeName(dtype)));
  }
  return absl::OkStatus();
}

absl::Status CheckFloatOperand(absl::string_view op, absl::string_view name, const Tensor& t) {
  if (absl::Status s = CheckDefinedContiguous(op, name, t); !s.ok()) return s;
  const DType d = t.dtype();
  if (d != DType::kFloat32 && d != DType::kBFloat16 && d != DType::kFloat16) {
    return Refuse(op, name,
                  absl::StrCat("has dtype ", DTypeName(d), ", expected fp32, bf16 or fp16"));
  }
  return absl::OkStatus();
}

absl::Status CheckSameDType(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref) {
  if (t.dtype() == ref.dtype()) return absl::OkStatus();
  return Refuse(op, name,
                absl::StrCat("has dtype ", DTypeName(t.dtype()), " but ", ref_name, " has ",
                             DTypeName(ref.dtype()), " (one storage dtype for both)"));
}

absl::Status CheckShape(absl::string_view op, absl::string_view name, const Tensor& t,
                        const Shape& expected) {
  if (t.shape() == expected) return absl::OkStatus();
  return Refuse(
      op, name,
      absl::StrCat("has shape ", ShapeToString(t.shape()), ", expected ", ShapeToString(expected)));
}

absl::Status CheckNumel(absl::string_view op, absl::string_view name, const Tensor& t,
                        int64_t expected) {
  if (t.numel() == expected) return absl::OkStatus();
  return Refuse(op, name,
                absl::StrCat("has ", t.numel(), " elements (shape ", ShapeToString(t.shape()),
                             "), expected ", expected));
}

absl::Status CheckOnOneGpu(absl::string_view op, std::initializer_list<NamedOperand> operands) {
  if (operands.size() == 0) return absl::OkStatus();
  const NamedOperand& first = *operands.begin();
  for (const NamedOperand& o : operands) {
    if (!o.tensor.device().is_cuda()) {
      return Refuse(
          op, o.name,
          absl::StrCat("is on ", o.tensor.device().ToString(), ", expected a CUDA device"));
    }
    if (o.tensor.device() != first.tensor.device()) {
      return Refuse(op, o.name,
                    absl::StrCat("is on ", o.tensor.device().ToString(), " but ", first.name,
                                 " is on ", first.tensor.device().ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace trident::cuda
