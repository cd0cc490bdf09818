#ifndef TRIDENT_CORE_CUDA_OPS_CAST_H_
#define TRIDENT_CORE_CUDA_OPS_CAST_H_

// The casts of mixed precision with the loss scaler's overflow check, on a
// GPU: dst = src * scale converted between fp32, bf16 and fp16 (fp16
// gradients unscaled into fp32, fp32 values rounded into 16-bit copies, ...),
// and a device-side flag set when any converted value is Inf or NaN.
//
// The CPU trainer decides "overflow" from a sum of squares in double, which
// is finite exactly when every gradient element is (training/optimizer.cc,
// AdamW::GradientsFinite); this does the same per element while the data is
// being read anyway, and also catches a finite value that overflows the
// destination (e.g. 1e5 into fp16), without a host synchronisation: the flag
// stays on the device until the step reads it once, with the loss and norm.
//
// The flag is only ever set to 1, never cleared, so one flag collects every
// cast of a step: the caller zeroes it (cudaMemsetAsync) before the first.
// Many threads may write 1 at once: the same value, no atomics needed, and
// the result does not depend on timing.

#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace trident::cuda {

// dst = src * scale (the product in fp32, rounded once to dst's dtype, nearest
// even); *device_flag = 1 when any element of the result is Inf or NaN.
// src and dst: one shape, contiguous, fp32/bf16/fp16 in any pair (also the
// same dtype: a scaled copy). scale must be finite. device_flag must point to
// device (or mapped pinned) memory. Queues one kernel on `stream`.
// Errors: INVALID_ARGUMENT naming the argument; UNAVAILABLE when the launch
// fails.
absl::Status CastWithFiniteCheck(cudaStream_t stream, const Tensor& src, const Tensor& dst,
                                 float scale, int* device_flag);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_OPS_CAST_H_
