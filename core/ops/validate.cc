#include "core/ops/validate.h"

#include "core/check.h"

namespace trident::ops::internal {

void CheckOperand(const ExecContext& ctx, const char* op, const char* name, const Tensor& t) {
  TRIDENT_CHECK(t.defined()) << "ops::" << op << ": " << name << " is undefined";
  TRIDENT_CHECK(t.device() == ctx.device())
      << "ops::" << op << ": " << name << " (" << t.DebugString() << ") is on " << t.device()
      << " but the context runs on " << ctx.device();
}

void CheckContiguous(const ExecContext& ctx, const char* op, const char* name, const Tensor& t) {
  CheckOperand(ctx, op, name, t);
  TRIDENT_CHECK(t.is_contiguous()) << "ops::" << op << ": " << name << " (" << t.DebugString()
                                   << ") must be contiguous (use ops::Contiguous)";
}

void CheckDType(const char* op, const char* name, const Tensor& t, DType dtype) {
  TRIDENT_CHECK(t.dtype() == dtype) << "ops::" << op << ": " << name << " is " << t.DebugString()
                                    << " but must be " << DTypeName(dtype);
}

void CheckNdim(const char* op, const char* name, const Tensor& t, int ndim) {
  TRIDENT_CHECK_EQ(t.ndim(), ndim) << "ops::" << op << ": " << name << " is " << t.DebugString()
                                   << " but must have " << ndim << " dims";
}

void CheckShape(const char* op, const char* name, const Tensor& t,
                absl::Span<const int64_t> expected) {
  TRIDENT_CHECK(absl::MakeConstSpan(t.shape()) == expected)
      << "ops::" << op << ": " << name << " is " << t.DebugString() << " but must have shape "
      << ShapeToString(expected);
}

void CheckNumel(const char* op, const char* name, const Tensor& t, int64_t expected) {
  TRIDENT_CHECK_EQ(t.numel(), expected)
      << "ops::" << op << ": " << name << " is " << t.DebugString() << " but must have " << expected
      << " elements";
}

void CheckSameShape(const char* op, const char* name, const Tensor& t, const char* ref_name,
                    const Tensor& ref) {
  TRIDENT_CHECK(t.shape() == ref.shape())
      << "ops::" << op << ": " << name << " is " << t.DebugString()
      << " but must have the shape of " << ref_name << " " << ShapeToString(ref.shape());
}

void CheckFloat32(const ExecContext& ctx, const char* op, const char* name, const Tensor& t) {
  TRIDENT_CHECK(t.dtype() == DType::kFloat32)
      << "ops::" << op << " on " << ctx.device() << " computes in fp32 only: " << name << " is "
      << t.DebugString() << " (convert with ops::Copy into an fp32 tensor)";
}

void CheckFloat32(const ExecContext& ctx, const char* op,
                  std::initializer_list<NamedTensor> tensors) {
  for (const NamedTensor& t : tensors) CheckFloat32(ctx, op, t.name, t.tensor);
}

}  // namespace trident::ops::internal
