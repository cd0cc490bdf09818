#ifndef TRIDENT_CORE_RANDOM_H_
#define TRIDENT_CORE_RANDOM_H_

// Deterministic, layout-independent initialisation (DESIGN.md rule 2).
//
// The value of element i of a parameter depends only on (seed, parameter name,
// i), where i is the element's index in the FULL (unsharded) parameter in
// row-major order. So a tensor-parallel shard, a pipeline stage or a ZeRO
// partition generates exactly its slice of what the serial model holds, bitwise.
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as
// 1, 2, 3", SC'11), a counter-based generator: output = bijection(counter, key).
//   key     = (seed low 32 bits, seed high 32 bits)
//   counter = (j low 32 bits, j high 32 bits, hash low, hash high)
//   where hash = NameHash(name) (FNV-1a 64) and j is the block index below.
// Normal: one Philox call per pair of elements (2j, 2j + 1): words 0-1 and 2-3
//   make two 53-bit uniforms u1 in (0, 1], u2 in [0, 1); Box-Muller in double
//   gives z0 = r cos(2 pi u2) for element 2j and z1 = r sin(2 pi u2) for 2j + 1,
//   r = sqrt(-2 ln u1); the value is float(std * z).
// Uniform: one Philox call per element j = i; words 0-1 make u in [0, 1); the
//   value is float(low + (high - low) * u), computed in double.
//
// Shards of matrices: see MatrixShard. Fill functions accept fp32 tensors:
// contiguous ones of any rank (viewed as [rows, last dim]) or 1-/2-D views with a
// unit last-dim stride and any row stride (e.g. a column slice of a local
// weight). A tensor on another device (a GPU parameter, with a context of that
// device) is filled on the host and copied up with the allocator's synchronous
// copies, so it holds bit for bit what a CPU tensor would.

#include <array>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident {

// The Philox4x32 bijection with 10 rounds.
std::array<uint32_t, 4> Philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

// FNV-1a 64-bit hash of `name`: stable across platforms, compilers and runs
// (unlike std::hash), so parameter names key the same streams everywhere.
uint64_t NameHash(absl::string_view name);

// Where a tensor sits inside the full parameter it is a piece of. The tensor,
// viewed as a matrix [rows, cols] (cols = its last dim, rows = the product of
// the others; a 1-D tensor is one row), holds the block
//   [row_offset, row_offset + rows) x [col_offset, col_offset + cols)
// of the full matrix [global_rows, global_cols], so its element (r, c) has the
// global index (row_offset + r) * global_cols + col_offset + c.
//   - Whole(): the tensor is the full parameter (the default).
//   - Column shard of a weight [in, out] split by output features:
//     {in, out, 0, rank * out / tp}; row shard (split by input features):
//     {in, out, rank * in / tp, 0}.
//   - A shard of a 1-D bias of length n: {1, n, 0, start}.
struct MatrixShard {
  int64_t global_rows = -1;  // -1: the tensor's own rows (with offsets 0).
  int64_t global_cols = -1;  // -1: the tensor's own cols.
  int64_t row_offset = 0;
  int64_t col_offset = 0;

  static MatrixShard Whole() { return MatrixShard{}; }
};

// Normal(0, std^2) values, as described above.
void FillNormal(const ExecContext& ctx, const Tensor& tensor, uint64_t seed, absl::string_view name,
                float std, const MatrixShard& shard = {});

// Uniform values in [low, high).
void FillUniform(const ExecContext& ctx, const Tensor& tensor, uint64_t seed,
                 absl::string_view name, float low, float high, const MatrixShard& shard = {});

// Every element = value (for biases and LayerNorm parameters; same rules on
// which tensors are accepted).
void FillConstant(const ExecContext& ctx, const Tensor& tensor, float value);

// The single values behind the fills, for tests and for generating values one by
// one: element `global_index` of parameter `name`.
float NormalValue(uint64_t seed, uint64_t name_hash, int64_t global_index, float std);
float UniformValue(uint64_t seed, uint64_t name_hash, int64_t global_index, float low, float high);

}  // namespace trident

#endif  // TRIDENT_CORE_RANDOM_H_
