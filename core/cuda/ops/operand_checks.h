#ifndef TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_
#define TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_

// Host-side argument checks of the CUDA op functions (core/cuda/ops/*.h). Each
// returns INVALID_ARGUMENT naming the op, the argument, what it is and what it
// must be, so a bad call is refused before anything is queued on the stream.
//
// Callers check structure (dtypes, shapes) first and devices last
// (CheckOnOneGpu), so these checks run, and are tested, on machines without a
// GPU: a wrong shape is named even for host tensors.

#include <cstdint>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::cuda {

// Defined, contiguous, and of `dtype`.
absl::Status CheckOperand(absl::string_view op, absl::string_view name, const Tensor& t,
                          DType dtype);

// Defined, contiguous, and of a float storage dtype (fp32, bf16, fp16).
absl::Status CheckFloatOperand(absl::string_view op, absl::string_view name, const Tensor& t);

// The dtype of `t` is that of `ref` (one storage dtype per group of operands).
absl::Status CheckSameDType(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref);

absl::Status CheckShape(absl::string_view op, absl::string_view name, const Tensor& t,
                        const Shape& expected);

absl::Status CheckNumel(absl::string_view op, absl::string_view name, const Tensor& t,
                        int64_t expected);

struct NamedOperand {
  absl::string_view name;
  const Tensor& tensor;
};

// Every operand is on one CUDA device (that of the first).
absl::Status CheckOnOneGpu(absl::string_view op, std::initializer_list<NamedOperand> operands);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_
