#include "core/ops/embedding.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckContiguous;

// ids (int32, any shape) against rows of width C in `rows_tensor`.
void CheckIdsAndRows(const ExecContext& ctx, const char* op, const Tensor& ids,
                     const char* table_name, const Tensor& table, const char* rows_name,
                     const Tensor& rows) {
  CheckContiguous(ctx, op, "ids", ids);
  internal::CheckDType(op, "ids", ids, DType::kInt32);
  CheckContiguous(ctx, op, table_name, table);
  internal::CheckNdim(op, table_name, table, 2);
  CheckContiguous(ctx, op, rows_name, rows);
  TRIDENT_CHECK(rows.ndim() >= 1 && rows.dim(-1) == table.dim(1))
      << "ops::" << op << ": " << rows_name << " is " << rows.DebugString()
      << " but its last dim must be " << table.dim(1) << ", the width of " << table_name << " "
      << table.DebugString();
  internal::CheckNumel(op, rows_name, rows, ids.numel() * table.dim(1));
}

// out/dout [B, T, C] against a position table [P, C].
void CheckPositions(const ExecContext& ctx, const char* op, const char* table_name,
                    const Tensor& table, const char* act_name, const Tensor& act) {
  CheckContiguous(ctx, op, table_name, table);
  CheckContiguous(ctx, op, act_name, act);
  internal::CheckNdim(op, table_name, table, 2);
  internal::CheckNdim(op, act_name, act, 3);
  TRIDENT_CHECK(act.dim(2) == table.dim(1) && act.dim(1) <= table.dim(0))
      << "ops::" << op << ": " << act_name << " " << act.DebugString() << " needs " << table_name
      << " [P >= " << act.dim(1) << ", " << act.dim(2) << "], got " << table.DebugString();
}

}  // namespace

void EmbeddingForward(const ExecContext& ctx, const Tensor& tokens, const Tensor& wte,
                      const Tensor& wpe, const Tensor& out) {
  CheckIdsAndRows(ctx, "EmbeddingForward", tokens, "wte", wte, "out", out);
  internal::CheckNdim("EmbeddingForward", "tokens", tokens, 2);
  internal::CheckShape("EmbeddingForward", "out", out, {tokens.dim(0), tokens.dim(1), wte.dim(1)});
  CheckPositions(ctx, "EmbeddingForward", "wpe", wpe, "out", out);
  const Backend& backend = BackendFor(ctx);
  backend.GatherRows(ctx, tokens, wte, 0, OutOfRangeIds::kAbort, out);
  backend.AddPositionEmbedding(ctx, wpe, out);
}

void EmbeddingBackward(const ExecContext& ctx, const Tensor& tokens, const Tensor& dout,
                       const Tensor& dwte, const Tensor& dwpe) {
  const Backend& backend = BackendFor(ctx);
  internal::CheckNdim("EmbeddingBackward", "tokens", tokens, 2);
  if (dwte.defined()) {
    CheckIdsAndRows(ctx, "EmbeddingBackward", tokens, "dwte", dwte, "dout", dout);
    backend.ScatterAddRows(ctx, tokens, dout, 0, OutOfRangeIds::kAbort, dwte);
  }
  if (dwpe.defined()) {
    CheckPositions(ctx, "EmbeddingBackward", "dwpe", dwpe, "dout", dout);
    internal::CheckShape("EmbeddingBackward", "dout", dout,
                         {tokens.dim(0), tokens.dim(1), dwpe.dim(1)});
    backend.PositionEmbeddingGrad(ctx, dout, dwpe);
  }
}

void GatherRows(const ExecContext& ctx, const Tensor& ids, const Tensor& table, int64_t row_start,
                const Tensor& out) {
  CheckIdsAndRows(ctx, "GatherRows", ids, "table", table, "out", out);
  BackendFor(ctx).GatherRows(ctx, ids, table, row_start, OutOfRangeIds::kSkip, out);
}

void ScatterAddRows(const ExecContext& ctx, const Tensor& ids, const Tensor& dout,
                    int64_t row_start, const Tensor& dtable) {
  CheckIdsAndRows(ctx, "ScatterAddRows", ids, "dtable", dtable, "dout", dout);
  BackendFor(ctx).ScatterAddRows(ctx, ids, dout, row_start, OutOfRangeIds::kSkip, dtable);
}

void AddPositionEmbedding(const ExecContext& ctx, const Tensor& wpe, const Tensor& out) {
  CheckPositions(ctx, "AddPositionEmbedding", "wpe", wpe, "out", out);
  BackendFor(ctx).AddPositionEmbedding(ctx, wpe, out);
}

void PositionEmbeddingGrad(const ExecContext& ctx, const Tensor& dout, const Tensor& dwpe) {
  CheckPositions(ctx, "PositionEmbeddingGrad", "dwpe", dwpe, "dout", dout);
  BackendFor(ctx).PositionEmbeddingGrad(ctx, dout, dwpe);
}

}  // namespace trident::ops
