#include "core/ops/linear.h"

#include "core/check.h"
#include "core/ops/dispatch.h"
#include "core/ops/gemm.h"
#include "core/ops/validate.h"

namespace trident::ops {

using internal::CheckContiguous;

void LinearForward(const ExecContext& ctx, const Tensor& x, const Tensor& weight,
                   const Tensor& bias, LinearEpilogue epilogue, const Tensor& y,
                   const Tensor& pre) {
  constexpr const char* kOp = "LinearForward";
  CheckContiguous(ctx, kOp, "x", x);
  CheckContiguous(ctx, kOp, "weight", weight);
  CheckContiguous(ctx, kOp, "bias", bias);
  CheckContiguous(ctx, kOp, "y", y);
  internal::CheckNdim(kOp, "x", x, 2);
  internal::CheckNdim(kOp, "weight", weight, 2);
  internal::CheckShape(kOp, "weight", weight, {x.dim(1), weight.dim(1)});
  internal::CheckShape(kOp, "bias", bias, {weight.dim(1)});
  internal::CheckShape(kOp, "y", y, {x.dim(0), weight.dim(1)});
  if (epilogue == LinearEpilogue::kBiasGelu) {
    CheckContiguous(ctx, kOp, "pre", pre);
    internal::CheckSameShape(kOp, "pre", pre, "y", y);
    TRIDENT_CHECK(pre.raw_data() != y.raw_data())
        << "ops::LinearForward: pre and y must be different buffers (the backward needs pre)";
  }
  // The product is x W into (pre or y) with beta = 1 onto the broadcast bias.
  ObserveAsGemm(x, Trans::kNo, weight, Trans::kNo,
                epilogue == LinearEpilogue::kBiasGelu ? pre : y, 1.0f, 1.0f,
                [&] { BackendFor(ctx).LinearForward(ctx, x, weight, bias, epilogue, y, pre); });
}

void LinearWeightGrad(const ExecContext& ctx, const Tensor& x, const Tensor& dy,
                      const Tensor& dweight, const Tensor& dbias) {
  constexpr const char* kOp = "LinearWeightGrad";
  CheckContiguous(ctx, kOp, "x", x);
  CheckContiguous(ctx, kOp, "dy", dy);
  CheckContiguous(ctx, kOp, "dweight", dweight);
  CheckContiguous(ctx, kOp, "dbias", dbias);
  internal::CheckNdim(kOp, "x", x, 2);
  internal::CheckNdim(kOp, "dy", dy, 2);
  internal::CheckShape(kOp, "dy", dy, {x.dim(0), dy.dim(1)});
  internal::CheckShape(kOp, "dweight", dweight, {x.dim(1), dy.dim(1)});
  internal::CheckShape(kOp, "dbias", dbias, {dy.dim(1)});
  ObserveAsGemm(x, Trans::kYes, dy, Trans::kNo, dweight, 1.0f, 1.0f,
                [&] { BackendFor(ctx).LinearWeightGrad(ctx, x, dy, dweight, dbias); });
}

}  // namespace trident::ops
