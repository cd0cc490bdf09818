#include "core/ops/attention.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/validate.h"

namespace trident::ops {
namespace {

using internal::CheckContiguous;

struct AttentionDims {
  int64_t batch, seq, heads, head_dim;
};

AttentionDims CheckQkv(const ExecContext& ctx, const char* op, const Tensor& qkv, int num_heads) {
  CheckContiguous(ctx, op, "qkv", qkv);
  internal::CheckNdim(op, "qkv", qkv, 3);
  TRIDENT_CHECK(num_heads > 0 && qkv.dim(2) % (3 * int64_t{num_heads}) == 0 && qkv.dim(2) > 0)
      << "ops::" << op << ": qkv " << qkv.DebugString() << " has a last dim that is not 3 * "
      << num_heads << " heads * head_dim";
  return {qkv.dim(0), qkv.dim(1), num_heads, qkv.dim(2) / (3 * int64_t{num_heads})};
}

}  // namespace

void AttentionForward(const ExecContext& ctx, const Tensor& qkv, int num_heads, const Tensor& out,
                      const Tensor& lse) {
  const AttentionDims d = CheckQkv(ctx, "AttentionForward", qkv, num_heads);
  CheckContiguous(ctx, "AttentionForward", "out", out);
  CheckContiguous(ctx, "AttentionForward", "lse", lse);
  internal::CheckShape("AttentionForward", "out", out, {d.batch, d.seq, d.heads * d.head_dim});
  internal::CheckShape("AttentionForward", "lse", lse, {d.batch, d.heads, d.seq});
  BackendFor(ctx).AttentionForward(ctx, qkv, num_heads, out, lse);
}

void AttentionBackward(const ExecContext& ctx, const Tensor& qkv, const Tensor& out,
                       const Tensor& lse, const Tensor& dout, int num_heads, const Tensor& dqkv) {
  const AttentionDims d = CheckQkv(ctx, "AttentionBackward", qkv, num_heads);
  CheckContiguous(ctx, "AttentionBackward", "out", out);
  CheckContiguous(ctx, "AttentionBackward", "lse", lse);
  CheckContiguous(ctx, "AttentionBackward", "dout", dout);
  CheckContiguous(ctx, "AttentionBackward", "dqkv", dqkv);
  internal::CheckShape("AttentionBackward", "out", out, {d.batch, d.seq, d.heads * d.head_dim});
  internal::CheckShape("AttentionBackward", "lse", lse, {d.batch, d.heads, d.seq});
  internal::CheckShape("AttentionBackward", "dout", dout, {d.batch, d.seq, d.heads * d.head_dim});
  internal::CheckSameShape("AttentionBackward", "dqkv", dqkv, "qkv", qkv);
  BackendFor(ctx).AttentionBackward(ctx, qkv, out, lse, dout, num_heads, dqkv);
}

}  // namespace trident::ops
