#ifndef TRIDENT_CORE_OPS_OPS_H_
#define TRIDENT_CORE_OPS_OPS_H_

// All tensor ops (namespace trident::ops). Model code calls these and never
// loops over raw floats (DESIGN.md rule 3).
//
// Conventions shared by every op
// - Every op takes the ExecContext first (core/exec_context.h): device, stream,
//   CPU threads, allocator. Every tensor must live on the context's device.
// - Inputs first, then outputs; scalars and options last. Outputs are
//   pre-allocated by the caller with the exact shape and passed as const Tensor&
//   (a Tensor is a handle; the op writes the elements, never the view). Ops never
//   allocate, except the few convenience wrappers that return a Tensor
//   (Matmul, Contiguous, Clone), which use ctx.allocator().
// - Overwrite vs accumulate: activations and input gradients (y, out, dx, dqkv,
//   dlogits, ...) are OVERWRITTEN. Parameter gradients (dgamma, dbeta, dbias,
//   dwte, dwpe; and Gemm with beta = 1 for weights) ACCUMULATE (+=), so the
//   split backward (DESIGN.md rule 4: *BackwardInput now, *BackwardWeights
//   later) and micro-batch gradient accumulation need no extra adds. Zero the
//   gradient buffers (Fill 0) at the start of a step.
// - Layouts: row-major; activations are [tokens, features] or [batch, seq,
//   features] (the same memory); a "row" is one vector over the last dim.
//   Linear weights are whatever the caller chooses: Gemm takes both transposes.
// - Strides: Copy takes any strides; Gemm/BatchedGemm take matrices with unit
//   column stride and any row stride; every other op wants contiguous tensors.
// - Dtypes: the CPU kernels compute in fp32 and refuse bf16/fp16 tensors with a
//   CHECK naming the op and the tensor (Copy converts between float dtypes);
//   token ids and targets are int32.
// - Aliasing: outputs must not overlap inputs unless the op says so (elementwise
//   ops, LayerNorm, GELU and CrossEntropyBackward allow exact in-place use).
// - Errors: wrong shapes, dtypes or devices are programming errors and abort
//   with a message naming the op, the tensor and the rule (core/check.h).
// - Determinism: the CPU kernels give the same bits for any thread count, except
//   GEMMs, whose split over threads is decided by shape and thread count (and
//   then fixed). Same inputs + same thread count => same bits, always.
// - Precision: fp32 storage and arithmetic; long reductions (bias and LayerNorm
//   weight gradients, softmax sums over the vocabulary, Sum, SumOfSquares)
//   accumulate in double. exp() is a vectorised polynomial with < 2e-7 relative
//   error (core/ops/cpu/vec_math.h).
//
// Families: gemm.h, elementwise.h, reduction.h, layer_norm.h, gelu.h,
// attention.h, embedding.h, cross_entropy.h, optimizer.h; option types in
// types.h; the device backend interface in backend.h.

#include "core/ops/attention.h"      // IWYU pragma: export
#include "core/ops/cross_entropy.h"  // IWYU pragma: export
#include "core/ops/elementwise.h"    // IWYU pragma: export
#include "core/ops/embedding.h"      // IWYU pragma: export
#include "core/ops/gelu.h"           // IWYU pragma: export
#include "core/ops/gemm.h"           // IWYU pragma: export
#include "core/ops/layer_norm.h"     // IWYU pragma: export
#include "core/ops/linear.h"         // IWYU pragma: export
#include "core/ops/optimizer.h"      // IWYU pragma: export
#include "core/ops/reduction.h"      // IWYU pragma: export
#include "core/ops/types.h"          // IWYU pragma: export

#endif  // TRIDENT_CORE_OPS_OPS_H_
