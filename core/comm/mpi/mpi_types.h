#ifndef TRIDENT_CORE_COMM_MPI_MPI_TYPES_H_
#define TRIDENT_CORE_COMM_MPI_MPI_TYPES_H_

// How the backend's element types and reductions map onto MPI, and MPI error
// codes onto absl::Status. Internal to the MPI backend.

#include <mpi.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::comm::mpi_internal {

// The MPI datatype that carries `dtype`. bf16 and fp16 travel as MPI_UINT16_T:
// MPI 3.1 has no 16-bit float types, so reductions on them use the user
// operations of MpiReduceOp.
MPI_Datatype MpiDatatype(DType dtype);

// The MPI operation computing `op` on `dtype` (kAvg maps to the sum; the caller
// divides afterwards). int32, int64 and fp32 sums use MPI's built-in
// operations; bf16 and fp16 (all reductions) and fp32 max/min (NaN must
// propagate) use commutative user operations (MPI_Op_create) over ReduceInto,
// created on first use. Call with MpiLock() held.
MPI_Op MpiReduceOp(DType dtype, ReduceOp op);

// OK for MPI_SUCCESS; otherwise a status naming `what` and MPI's own message.
// MPI_ERR_TRUNCATE (a message longer than the receive buffer) is INVALID_ARGUMENT,
// anything else INTERNAL.
absl::Status MpiErrorToStatus(int error_code, absl::string_view what);

}  // namespace trident::comm::mpi_internal

#endif  // TRIDENT_CORE_COMM_MPI_MPI_TYPES_H_
