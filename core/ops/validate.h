#ifndef TRIDENT_CORE_OPS_VALIDATE_H_
#define TRIDENT_CORE_OPS_VALIDATE_H_

// Argument checks shared by the public ops and the backends. A failed check is
// a programming error in the caller: it aborts with a message naming the op, the
// argument, what it is and what it must be.

#include <cstdint>
#include <initializer_list>

#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops::internal {

// Defined and on the context's device.
void CheckOperand(const ExecContext& ctx, const char* op, const char* name, const Tensor& t);
// CheckOperand plus contiguous.
void CheckContiguous(const ExecContext& ctx, const char* op, const char* name, const Tensor& t);
void CheckDType(const char* op, const char* name, const Tensor& t, DType dtype);
void CheckNdim(const char* op, const char* name, const Tensor& t, int ndim);
void CheckShape(const char* op, const char* name, const Tensor& t,
                absl::Span<const int64_t> expected);
void CheckNumel(const char* op, const char* name, const Tensor& t, int64_t expected);
// Same shape as `ref` (named ref_name in the message).
void CheckSameShape(const char* op, const char* name, const Tensor& t, const char* ref_name,
                    const Tensor& ref);
// For kernels that compute in fp32 only (the CPU backend): refuses other dtypes,
// naming the device so the message says where 16-bit floats are not supported.
void CheckFloat32(const ExecContext& ctx, const char* op, const char* name, const Tensor& t);

struct NamedTensor {
  const char* name;
  const Tensor& tensor;
};
// CheckFloat32 of each: CheckFloat32(ctx, "Op", {{"x", x}, {"y", y}}).
void CheckFloat32(const ExecContext& ctx, const char* op,
                  std::initializer_list<NamedTensor> tensors);

}  // namespace trident::ops::internal

#endif  // TRIDENT_CORE_OPS_VALIDATE_H_
