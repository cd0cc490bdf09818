#include "core/comm/mpi/mpi_types.h"

#include <array>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace trident::comm::mpi_internal {
namespace {

// MPI calls user functions as inout[i] = in[i] (op) inout[i]; ReduceInto computes
// dst = dst (op) src, the same for the commutative operations used here.
template <DType kType, ReduceOp kOp>
void ReduceWithKernel(void* in, void* inout, int* len, MPI_Datatype* /*datatype*/) {
  ReduceInto(inout, in, *len, kType, kOp);
}

using UserFunction = void (*)(void*, void*, int*, MPI_Datatype*);

// Index 0 = sum, 1 = max, 2 = min (kAvg shares the sum).
int ReductionIndex(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return 0;
    case ReduceOp::kMax:
      return 1;
    case ReduceOp::kMin:
      return 2;
  }
  return 0;
}

// The user operations, indexed by UserOpIndex: bf16 sum/max/min, fp16
// sum/max/min, fp32 max/min.
constexpr int kUserOps = 8;
constexpr std::array<UserFunction, kUserOps> kUserFunctions = {
    &ReduceWithKernel<DType::kBFloat16, ReduceOp::kSum>,
    &ReduceWithKernel<DType::kBFloat16, ReduceOp::kMax>,
    &ReduceWithKernel<DType::kBFloat16, ReduceOp::kMin>,
    &ReduceWithKernel<DType::kFloat16, ReduceOp::kSum>,
    &ReduceWithKernel<DType::kFloat16, ReduceOp::kMax>,
    &ReduceWithKernel<DType::kFloat16, ReduceOp::kMin>,
    &ReduceWithKernel<DType::kFloat32, ReduceOp::kMax>,
    &ReduceWithKernel<DType::kFloat32, ReduceOp::kMin>,
};

int UserOpIndex(DType dtype, ReduceOp op) {
  if (dtype == DType::kFloat32) return 6 + ReductionIndex(op) - 1;
  return (dtype == DType::kBFloat16 ? 0 : 3) + ReductionIndex(op);
}

MPI_Op UserOp(DType dtype, ReduceOp op) {
  // Created once per process; MPI frees user operations at MPI_Finalize.
  static std::array<MPI_Op, kUserOps> ops = [] {
    std::array<MPI_Op, kUserOps> nulls;
    nulls.fill(MPI_OP_NULL);
    return nulls;
  }();
  const int index = UserOpIndex(dtype, op);
  if (ops[index] == MPI_OP_NULL) {
    const int rc = MPI_Op_create(kUserFunctions[index], /*commute=*/1, &ops[index]);
    TRIDENT_CHECK_EQ(rc, MPI_SUCCESS) << "MPI_Op_create";
  }
  return ops[index];
}

}  // namespace

MPI_Datatype MpiDatatype(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kBFloat16:
    case DType::kFloat16:
      return MPI_UINT16_T;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kInt64:
      return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op MpiReduceOp(DType dtype, ReduceOp op) {
  if (dtype == DType::kBFloat16 || dtype == DType::kFloat16) return UserOp(dtype, op);
  // MPI_MAX/MPI_MIN on floats drop a NaN depending on operand order (a > b ?
  // a : b); the trainer's overflow checks reduce NaN and Inf flags with max, so
  // fp32 max/min go through ReduceInto, which propagates NaN like the local
  // backend.
  if (dtype == DType::kFloat32 && (op == ReduceOp::kMax || op == ReduceOp::kMin)) {
    return UserOp(dtype, op);
  }
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_OP_NULL;
}

absl::Status MpiErrorToStatus(int error_code, absl::string_view what) {
  if (error_code == MPI_SUCCESS) return absl::OkStatus();
  char message[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(error_code, message, &length);
  int error_class = error_code;
  MPI_Error_class(error_code, &error_class);
  const std::string text = absl::StrCat(what, " failed: ", absl::string_view(message, length),
                                        " (MPI error ", error_code, ")");
  if (error_class == MPI_ERR_TRUNCATE) {
    return absl::InvalidArgumentError(
        absl::StrCat(text, "; the message is longer than the receive buffer"));
  }
  return absl::InternalError(text);
}

}  // namespace trident::comm::mpi_internal
