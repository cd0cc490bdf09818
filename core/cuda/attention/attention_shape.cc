#include "core/cuda/attention/attention_shape.h"

#include <initializer_list>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

struct Named {
  const char* name;
  const Tensor* tensor;
};

absl::Status Invalid(absl::string_view op, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(op, ": ", what));
}

absl::Status CheckDefinedContiguous(absl::string_view op, std::initializer_list<Named> tensors) {
  for (const Named& t : tensors) {
    if (!t.tensor->defined()) return Invalid(op, absl::StrCat(t.name, " is undefined"));
    if (!t.tensor->is_contiguous()) {
      return Invalid(op, absl::StrCat(t.name, " ", t.tensor->DebugString(), " must be contiguous"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckShape(absl::string_view op, const char* name, const Tensor& t,
                        std::initializer_list<int64_t> expected) {
  if (t.shape() != Shape(expected)) {
    return Invalid(op, absl::StrCat(name, " has shape ", ShapeToString(t.shape()), ", expected ",
                                    ShapeToString(Shape(expected))));
  }
  return absl::OkStatus();
}

// The dims of qkv [B, T, 3 * num_heads * D].
absl::StatusOr<AttentionShape> QkvShape(absl::string_view op, const Tensor& qkv, int num_heads) {
  if (qkv.ndim() != 3) {
    return Invalid(op, absl::StrCat("qkv ", qkv.DebugString(), " must be 3-d [B, T, 3 * H * D]"));
  }
  if (num_heads <= 0) return Invalid(op, absl::StrCat("num_heads is ", num_heads, ": must be > 0"));
  const int64_t last = qkv.dim(2);
  if (last <= 0 || last % (3 * int64_t{num_heads}) != 0) {
    return Invalid(op, absl::StrCat("qkv ", qkv.DebugString(), " has a last dim ", last,
                                    " that is not 3 * num_heads (", num_heads, ") * head_dim"));
  }
  return AttentionShape{.batch = qkv.dim(0),
                        .seq = qkv.dim(1),
                        .heads = num_heads,
                        .head_dim = last / (3 * int64_t{num_heads})};
}

// qkv's dtype is fp32, bf16 or fp16 and every tensor in `same` has it; lse is
// fp32 (the statistics stay fp32 whatever the storage, as in the model).
absl::Status CheckDTypes(absl::string_view op, const Tensor& qkv, std::initializer_list<Named> same,
                         const Tensor& lse) {
  const DType dtype = qkv.dtype();
  if (dtype != DType::kFloat32 && dtype != DType::kBFloat16 && dtype != DType::kFloat16) {
    return Invalid(
        op, absl::StrCat("qkv has dtype ", DTypeName(dtype), ": must be fp32, bf16 or fp16"));
  }
  for (const Named& t : same) {
    if (t.tensor->dtype() != dtype) {
      return Invalid(op, absl::StrCat(t.name, " has dtype ", DTypeName(t.tensor->dtype()),
                                      ", expected qkv's ", DTypeName(dtype)));
    }
  }
  if (lse.dtype() != DType::kFloat32) {
    return Invalid(op, absl::StrCat("lse has dtype ", DTypeName(lse.dtype()), ": must be fp32"));
  }
  return absl::OkStatus();
}

absl::Status CheckOneCudaDevice(absl::string_view op, std::initializer_list<Named> tensors) {
  const Device device = tensors.begin()->tensor->device();
  for (const Named& t : tensors) {
    if (!t.tensor->device().is_cuda()) {
      return Invalid(op, absl::StrCat(t.name, " is on ", t.tensor->device().ToString(),
                                      ": must be on a CUDA device"));
    }
    if (t.tensor->device() != device) {
      return Invalid(op, absl::StrCat(t.name, " is on ", t.tensor->device().ToString(), ", qkv on ",
                                      device.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string AttentionShapeToString(const AttentionShape& shape) {
  return absl::StrFormat("B=%d T=%d H=%d D=%d", shape.batch, shape.seq, shape.heads,
                         shape.head_dim);
}

absl::StatusOr<AttentionShape> CheckAttentionForwardArgs(absl::string_view op, const Tensor& qkv,
                                                         int num_heads, const Tensor& out,
                                                         const Tensor& lse) {
  RETURN_IF_ERROR(CheckDefinedContiguous(op, {{"qkv", &qkv}, {"out", &out}, {"lse", &lse}}));
  ASSIGN_OR_RETURN(const AttentionShape s, QkvShape(op, qkv, num_heads));
  RETURN_IF_ERROR(CheckShape(op, "out", out, {s.batch, s.seq, s.channels()}));
  RETURN_IF_ERROR(CheckShape(op, "lse", lse, {s.batch, s.heads, s.seq}));
  RETURN_IF_ERROR(CheckDTypes(op, qkv, {{"out", &out}}, lse));
  RETURN_IF_ERROR(CheckOneCudaDevice(op, {{"qkv", &qkv}, {"out", &out}, {"lse", &lse}}));
  return s;
}

absl::StatusOr<AttentionShape> CheckAttentionBackwardArgs(absl::string_view op, const Tensor& qkv,
                                                          const Tensor& out, const Tensor& lse,
                                                          const Tensor& dout, int num_heads,
                                                          const Tensor& dqkv) {
  RETURN_IF_ERROR(CheckDefinedContiguous(
      op, {{"qkv", &qkv}, {"out", &out}, {"lse", &lse}, {"dout", &dout}, {"dqkv", &dqkv}}));
  ASSIGN_OR_RETURN(const AttentionShape s, QkvShape(op, qkv, num_heads));
  RETURN_IF_ERROR(CheckShape(op, "out", out, {s.batch, s.seq, s.channels()}));
  RETURN_IF_ERROR(CheckShape(op, "lse", lse, {s.batch, s.heads, s.seq}));
  RETURN_IF_ERROR(CheckShape(op, "dout", dout, {s.batch, s.seq, s.channels()}));
  RETURN_IF_ERROR(CheckShape(op, "dqkv", dqkv, {s.batch, s.seq, 3 * s.channels()}));
  RETURN_IF_ERROR(CheckDTypes(op, qkv, {{"out", &out}, {"dout", &dout}, {"dqkv", &dqkv}}, lse));
  RETURN_IF_ERROR(CheckOneCudaDevice(
      op, {{"qkv", &qkv}, {"out", &out}, {"lse", &lse}, {"dout", &dout}, {"dqkv", &dqkv}}));
  return s;
}

StridedView QkvHeadView(const AttentionShape& s, QkvPart part) {
  const int64_t c = s.channels();
  return {.offset = static_cast<int64_t>(part) * c,
          .dims = {s.batch, s.heads, s.seq, s.head_dim},
          .strides = {s.seq * 3 * c, s.head_dim, 3 * c, 1}};
}

StridedView TransposeLastTwo(StridedView v) {
  std::swap(v.dims[2], v.dims[3]);
  std::swap(v.strides[2], v.strides[3]);
  return v;
}

StridedView KeyTransposedView(const AttentionShape& s) {
  return TransposeLastTwo(QkvHeadView(s, QkvPart::kKey));
}

StridedView OutHeadView(const AttentionShape& s) {
  const int64_t c = s.channels();
  return {.offset = 0,
          .dims = {s.batch, s.heads, s.seq, s.head_dim},
          .strides = {s.seq * c, s.head_dim, c, 1}};
}

StridedView StatsView(const AttentionShape& s) {
  return {
      .offset = 0, .dims = {s.batch, s.heads, s.seq, 1}, .strides = {s.heads * s.seq, s.seq, 1, 1}};
}

StridedView ScoreView(const AttentionShape& s) {
  return {.offset = 0,
          .dims = {s.batch, s.heads, s.seq, s.seq},
          .strides = {s.heads * s.seq * s.seq, s.seq * s.seq, s.seq, 1}};
}

std::string SdpaPlanKeyToString(const SdpaPlanKey& key) {
  return absl::StrCat(key.direction == SdpaDirection::kForward ? "fwd " : "bwd ",
                      DTypeName(key.dtype), " ", AttentionShapeToString(key.shape));
}

}  // namespace trident::cuda
