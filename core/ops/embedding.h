#ifndef TRIDENT_CORE_OPS_EMBEDDING_H_
#define TRIDENT_CORE_OPS_EMBEDDING_H_

// Token and position embeddings (GPT-2: out = wte[token] + wpe[position]).
//
// Token ids are int32. Tables are contiguous fp32 [rows, C]. Forward outputs
// are overwritten (AddPositionEmbedding adds in place); table gradients
// ACCUMULATE (+=): micro-batches sum into one buffer, and a tied output head
// adds its own gradient to the same dwte. Gradient sums run in a fixed order
// (per column, tokens in order), so they are deterministic for any thread count.

#include <cstdint>

#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::ops {

// out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :].
// tokens [B, T] with ids in [0, V) (aborts otherwise: the data loader validates
// user data); wte [V, C]; wpe [P, C] with P >= T; out [B, T, C].
void EmbeddingForward(const ExecContext& ctx, const Tensor& tokens, const Tensor& wte,
                      const Tensor& wpe, const Tensor& out);

// dwte[tokens[b, t], :] += dout[b, t, :];  dwpe[t, :] += sum_b dout[b, t, :].
// Either gradient may be an undefined Tensor() to skip it.
void EmbeddingBackward(const ExecContext& ctx, const Tensor& tokens, const Tensor& dout,
                       const Tensor& dwte, const Tensor& dwpe);

// Building blocks (vocabulary-parallel embedding: each rank holds the rows
// [row_start, row_start + rows) of the full table, and the tp group sums the
// partial lookups with an all-reduce).
//
// out[i, :] = table[ids[i] - row_start, :] when the id is in this table's range,
// zeros otherwise. ids: any shape, n elements; out: n * C elements, last dim C.
void GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table, int64_t row_start,
                const Tensor& out);

// dtable[ids[i] - row_start, :] += dout[i, :] for the ids in this table's range.
void ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                    int64_t row_start, const Tensor& dtable);

// out[b, t, :] += wpe[t, :] for out [B, T, C], wpe [P, C], P >= T.
void AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe, const Tensor& out);

// dwpe[t, :] += sum_b dout[b, t, :] for dout [B, T, C], dwpe [P, C], P >= T.
void PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout, const Tensor& dwpe);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_EMBEDDING_H_
