#ifndef TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_
#define TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_

// Host-side argument checks of the CUDA op functions (core/cuda/ops/*.h). Each
// returns INVALID_ARGUMENT naming the op, the argument, what it is and what it
// must be, so a Backend method can report a bad call as a value.
//
// The structural checks (defined, dtype, shape, contiguity) never touch a
// device, and every op function runs them before CheckOnOneCudaDevice and
// before any launch: refusal tests of structure run on machines without a GPU
// (with CPU tensors, which then fail only the device check).

#include <cstdint>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::cuda {

// Whether `dtype` is a float storage type the kernels read and write: fp32,
// bf16 or fp16.
bool IsFloatStorage(DType dtype);

// Defined, of a float storage dtype, contiguous.
absl::Status CheckFloatOperand(absl::string_view op, absl::string_view name, const Tensor& t);

// Defined, contiguous, and of exactly `dtype` (ids, statistics, moments).
absl::Status CheckOperand(absl::string_view op, absl::string_view name, const Tensor& t,
                          DType dtype);

// Of exactly `dtype` (e.g. the fp32 optimizer moments).
absl::Status CheckDType(absl::string_view op, absl::string_view name, const Tensor& t,
                        DType dtype);

// The same dtype as `ref` (named ref_name in the message).
absl::Status CheckSameDType(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref);

// The same shape as `ref` (named ref_name in the message).
absl::Status CheckSameShape(absl::string_view op, absl::string_view name, const Tensor& t,
                            absl::string_view ref_name, const Tensor& ref);

// Of shape `expected`; of `expected` elements whatever the shape.
absl::Status CheckShape(absl::string_view op, absl::string_view name, const Tensor& t,
                        const Shape& expected);
absl::Status CheckNumel(absl::string_view op, absl::string_view name, const Tensor& t,
                        int64_t expected);

// `row` is one-dimensional and `t`'s last dim equals its length (the bias and
// broadcast ops: t has numel / C rows of C).
absl::Status CheckRowOperand(absl::string_view op, absl::string_view row_name, const Tensor& row,
                             absl::string_view name, const Tensor& t);

struct NamedTensor {
  absl::string_view name;
  const Tensor& tensor;
};

// Every tensor is on a CUDA device, all on the same one (the first's).
absl::Status CheckOnOneCudaDevice(absl::string_view op, std::initializer_list<NamedTensor> tensors);

// The same for a list: "<list_name>[i]" in messages.
absl::Status CheckOnOneCudaDevice(absl::string_view op, absl::string_view list_name,
                                  absl::Span<const Tensor> tensors);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_OPERAND_CHECKS_H_
