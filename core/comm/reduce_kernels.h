#ifndef TRIDENT_CORE_COMM_REDUCE_KERNELS_H_
#define TRIDENT_CORE_COMM_REDUCE_KERNELS_H_

// Element-wise reduction kernels for backends that reduce on the host (local,
// MPI user ops). A reduction over many ranks widens 16-bit floats into a float
// accumulator, combines every rank's values there, and rounds once at the end:
//
//   WidenInto(acc, rank0) ; AccumulateInto(acc, rank_r) for r = 1.. ;
//   [DivideAccumulator(acc, n) for kAvg] ; NarrowInto(out, acc)
//
// For fp32, int32 and int64 the accumulator has the element type itself.
// Integer sums wrap around (two's complement) instead of being undefined on
// overflow; integer kAvg truncates toward zero. Float max/min propagate NaN.

#include <cstddef>
#include <cstdint>

#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::comm {

// The accumulator's element type for `dtype`: kFloat32 for the 16-bit floats,
// `dtype` itself otherwise.
DType AccumulatorDType(DType dtype);

// acc[i] = widen(src[i]); `acc` holds AccumulatorDType(dtype) elements.
void WidenInto(void* acc, const void* src, int64_t count, DType dtype);

// acc[i] = acc[i] op widen(src[i]); kAvg combines like kSum.
void AccumulateInto(void* acc, const void* src, int64_t count, DType dtype, ReduceOp op);

// acc[i] /= divisor, in the accumulator type.
void DivideAccumulator(void* acc, int64_t count, DType dtype, int divisor);

// dst[i] = round(acc[i]) to `dtype`.
void NarrowInto(void* dst, const void* acc, int64_t count, DType dtype);

// dst[i] = dst[i] op src[i] with one rounding per element (ReduceInto).
void ReduceElementsInto(void* dst, const void* src, int64_t count, DType dtype, ReduceOp op);

// data[i] /= divisor with one rounding per element (DivideInPlace).
void DivideElements(void* data, int64_t count, DType dtype, int divisor);

}  // namespace trident::comm

#endif  // TRIDENT_CORE_COMM_REDUCE_KERNELS_H_
