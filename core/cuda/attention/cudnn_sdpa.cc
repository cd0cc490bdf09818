#include "core/cuda/attention/cudnn_sdpa.h"

#include <cudnn.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace trident::cuda {
namespace {

// cuDNN's status name plus its last error message (which names the attribute
// or rule that failed), after `what`.
absl::Status CudnnError(cudnnStatus_t status, absl::string_view what) {
  char detail[1024] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  return absl::InternalError(
      absl::StrCat(what, ": ", cudnnGetErrorString(status),
                   detail[0] != '\0' ? absl::StrCat(" (", detail, ")") : ""));
}

#define TRIDENT_CUDNN_RETURN_IF_ERROR(call, what)       \
  do {                                                  \
    const cudnnStatus_t trident_cudnn_status = (call);  \
    if (trident_cudnn_status != CUDNN_STATUS_SUCCESS) { \
      return CudnnError(trident_cudnn_status, (what));  \
    }                                                   \
  } while (0)

struct DescriptorDeleter {
  void operator()(void* d) const { cudnnBackendDestroyDescriptor(d); }
};
using DescriptorPtr = std::unique_ptr<void, DescriptorDeleter>;

absl::StatusOr<DescriptorPtr> NewDescriptor(cudnnBackendDescriptorType_t type) {
  cudnnBackendDescriptor_t d = nullptr;
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnBackendCreateDescriptor(type, &d),
                                absl::StrCat("cudnnBackendCreateDescriptor(type ", type, ")"));
  return DescriptorPtr(d);
}

absl::Status SetAttribute(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                          cudnnBackendAttributeType_t type, int64_t count, const void* values) {
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(d, name, type, count, values),
                                absl::StrCat("cudnnBackendSetAttribute(attribute ", name, ")"));
  return absl::OkStatus();
}

absl::Status SetDescriptor(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                           cudnnBackendDescriptor_t value) {
  return SetAttribute(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &value);
}

absl::Status Finalize(cudnnBackendDescriptor_t d, absl::string_view what) {
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d), absl::StrCat("finalizing ", what));
  return absl::OkStatus();
}

cudnnDataType_t CudnnDataType(DType dtype) {
  return dtype == DType::kBFloat16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
}

// Unique ids of the tensors the caller supplies (the variant pack); virtual
// tensors are numbered from kFirstVirtualUid.
enum Uid : int64_t {
  kQ = 1,
  kK,  // K^T in both graphs: the key third of qkv viewed as [B, H, D, T]
  kV,  // V in the forward, V^T in the backward
  kO,
  kStats,
  kDO,
  kDQ,
  kDK,
  kDV,
  kScale,        // 1 / sqrt(D), by value
  kNegativeInf,  // the masked score, by value
  kOne,          // 1, by value
  kDelta,        // backward: rowsum(dO * O), fp32 in our workspace
  kDQAccum,      // backward: dQ in fp32, in our workspace
  kFirstVirtualUid = 100,
};

// [B, H, T, D] contiguous: the fp32 dQ accumulator.
StridedView ContiguousHeads(const AttentionShape& s) {
  return {.offset = 0,
          .dims = {s.batch, s.heads, s.seq, s.head_dim},
          .strides = {s.heads * s.seq * s.head_dim, s.seq * s.head_dim, s.head_dim, 1}};
}

// One operation graph under construction; owns every descriptor it makes,
// and keeps them alive for the execution plan built from them.
class GraphBuilder {
 public:
  explicit GraphBuilder(cudnnHandle_t handle) : handle_(handle) {}

  absl::StatusOr<cudnnBackendDescriptor_t> Tensor(int64_t uid, cudnnDataType_t type,
                                                  const StridedView& view, bool is_virtual) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t t, Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
    const int64_t alignment = 16;
    RETURN_IF_ERROR(SetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, view.dims.data()));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, view.strides.data()));
    RETURN_IF_ERROR(SetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
    RETURN_IF_ERROR(Finalize(t, absl::StrCat("tensor ", uid)));
    return t;
  }

  absl::StatusOr<cudnnBackendDescriptor_t> Virtual(cudnnDataType_t type, const StridedView& view) {
    return Tensor(next_virtual_uid_++, type, view, /*is_virtual=*/true);
  }

  // An fp32 scalar passed by value: the variant pack holds a host pointer.
  absl::StatusOr<cudnnBackendDescriptor_t> Scalar(int64_t uid) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t t, Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
    const cudnnDataType_t type = CUDNN_DATA_FLOAT;
    const std::array<int64_t, 4> ones = {1, 1, 1, 1};
    const int64_t alignment = 16;
    const bool by_value = true;
    RETURN_IF_ERROR(SetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, ones.data()));
    RETURN_IF_ERROR(SetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, ones.data()));
    RETURN_IF_ERROR(SetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
    RETURN_IF_ERROR(
        SetAttribute(t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value));
    RETURN_IF_ERROR(Finalize(t, absl::StrCat("scalar ", uid)));
    return t;
  }

  // y = mode(x[, b][, t]) computed in `math`; `axis` for GEN_INDEX only.
  absl::Status Pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t math,
                         cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                         cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
                         int64_t axis = -1) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t pw, Make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
    RETURN_IF_ERROR(
        SetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    RETURN_IF_ERROR(
        SetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &math));
    if (axis >= 0) {
      RETURN_IF_ERROR(SetAttribute(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis));
    }
    RETURN_IF_ERROR(Finalize(pw, absl::StrCat("pointwise mode ", mode)));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t op,
                     Make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x));
    if (b != nullptr) RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, b));
    if (t != nullptr) RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, t));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y));
    return AddOperation(op, absl::StrCat("pointwise operation mode ", mode));
  }

  // y[b, h, i, 0] = op over j of x[b, h, i, j], in fp32.
  absl::Status Reduction(cudnnReduceTensorOp_t reduce, cudnnBackendDescriptor_t x,
                         cudnnBackendDescriptor_t y) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t r, Make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR));
    const cudnnDataType_t math = CUDNN_DATA_FLOAT;
    RETURN_IF_ERROR(SetAttribute(r, CUDNN_ATTR_REDUCTION_OPERATOR,
                                 CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce));
    RETURN_IF_ERROR(
        SetAttribute(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &math));
    RETURN_IF_ERROR(Finalize(r, "reduction"));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t op,
                     Make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, r));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y));
    return AddOperation(op, "reduction operation");
  }

  // c = a b per (batch, head), accumulated in fp32.
  absl::Status Matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                      cudnnBackendDescriptor_t c) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t mm, Make(CUDNN_BACKEND_MATMUL_DESCRIPTOR));
    const cudnnDataType_t math = CUDNN_DATA_FLOAT;
    RETURN_IF_ERROR(SetAttribute(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &math));
    RETURN_IF_ERROR(Finalize(mm, "matmul"));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t op, Make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, mm));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, a));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, b));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, c));
    return AddOperation(op, "matmul operation");
  }

  // y is x under other dims/strides (a transpose, for a matmul operand).
  absl::Status Reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t op, Make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, x));
    RETURN_IF_ERROR(SetDescriptor(op, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, y));
    return AddOperation(op, "reshape operation");
  }

  // out = select(row >= col, scores, -inf): the causal mask (query i sees keys
  // j <= i), as GEN_INDEX / CMP_GE / BINARY_SELECT over the score shape.
  absl::StatusOr<cudnnBackendDescriptor_t> CausalMask(cudnnBackendDescriptor_t scores,
                                                      cudnnBackendDescriptor_t negative_inf,
                                                      const StridedView& score_view) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t row, Virtual(CUDNN_DATA_INT32, score_view));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t col, Virtual(CUDNN_DATA_INT32, score_view));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t keep, Virtual(CUDNN_DATA_BOOLEAN, score_view));
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t masked, Virtual(CUDNN_DATA_FLOAT, score_view));
    RETURN_IF_ERROR(Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, scores, nullptr, nullptr,
                              row, /*axis=*/2));
    RETURN_IF_ERROR(Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, scores, nullptr, nullptr,
                              col, /*axis=*/3));
    RETURN_IF_ERROR(Pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, col, nullptr, keep));
    RETURN_IF_ERROR(Pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, scores, negative_inf,
                              keep, masked));
    return masked;
  }

  // The finalised operation graph of the operations added so far (on the
  // builder's handle, if it has one).
  absl::StatusOr<cudnnBackendDescriptor_t> OperationGraph(absl::string_view what) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t graph, Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
    if (handle_ != nullptr) {
      RETURN_IF_ERROR(
          SetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_));
    }
    RETURN_IF_ERROR(SetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<int64_t>(ops_.size()),
                                 ops_.data()));
    RETURN_IF_ERROR(Finalize(graph, absl::StrCat("the operation graph of ", what)));
    return graph;
  }

  // Finalises the operation graph and the execution plan of the first engine
  // configuration (heuristics mode A) that accepts it.
  absl::StatusOr<cudnnBackendDescriptor_t> BuildPlan(absl::string_view what) {
    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t graph, OperationGraph(what));

    ASSIGN_OR_RETURN(cudnnBackendDescriptor_t heuristics,
                     Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    RETURN_IF_ERROR(SetDescriptor(heuristics, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph));
    RETURN_IF_ERROR(
        SetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
    RETURN_IF_ERROR(Finalize(heuristics, absl::StrCat("the engine heuristics of ", what)));
    int64_t count = 0;
    TRIDENT_CUDNN_RETURN_IF_ERROR(
        cudnnBackendGetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
        absl::StrCat("counting the engine configurations of ", what));
    if (count <= 0) {
      return absl::UnimplementedError(
          absl::StrCat("cuDNN has no engine for the attention graph of ", what));
    }
    std::vector<cudnnBackendDescriptor_t> configs(count);
    for (auto& config : configs) {
      ASSIGN_OR_RETURN(config, Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
    }
    int64_t returned = 0;
    TRIDENT_CUDNN_RETURN_IF_ERROR(
        cudnnBackendGetAttribute(heuristics, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned, configs.data()),
        absl::StrCat("reading the engine configurations of ", what));
    absl::Status last_error;
    for (int64_t i = 0; i < returned; ++i) {
      ASSIGN_OR_RETURN(cudnnBackendDescriptor_t plan,
                       Make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
      RETURN_IF_ERROR(
          SetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_));
      RETURN_IF_ERROR(SetDescriptor(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i]));
      last_error = Finalize(plan, absl::StrCat("the execution plan of ", what,
                                               " with engine "
                                               "configuration ",
                                               i, " of ", returned));
      if (last_error.ok()) return plan;
    }
    return absl::UnimplementedError(absl::StrCat("no cuDNN engine configuration runs ", what,
                                                 "; the last said: ", last_error.message()));
  }

 private:
  absl::StatusOr<cudnnBackendDescriptor_t> Make(cudnnBackendDescriptorType_t type) {
    ASSIGN_OR_RETURN(DescriptorPtr d, NewDescriptor(type));
    owned_.push_back(std::move(d));
    return owned_.back().get();
  }

  absl::Status AddOperation(cudnnBackendDescriptor_t op, absl::string_view what) {
    RETURN_IF_ERROR(Finalize(op, what));
    ops_.push_back(op);
    return absl::OkStatus();
  }

  cudnnHandle_t handle_;
  int64_t next_virtual_uid_ = kFirstVirtualUid;
  std::vector<DescriptorPtr> owned_;
  std::vector<cudnnBackendDescriptor_t> ops_;
};

int64_t RoundUp256(int64_t bytes) { return (bytes + 255) / 256 * 256; }

// Adds the operations of `key`'s graph (the header's forward or backward) to
// `g`; returns the uids of its variant pack in the order CudnnSdpa passes the
// call's pointers.
absl::StatusOr<std::vector<int64_t>> AddSdpaOperations(GraphBuilder& g, const SdpaPlanKey& key) {
  const AttentionShape& s = key.shape;
  const cudnnDataType_t io = CudnnDataType(key.dtype);
  const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
  const StridedView score = ScoreView(s);
  const StridedView stats_view = StatsView(s);

  ASSIGN_OR_RETURN(auto q, g.Tensor(kQ, io, QkvHeadView(s, QkvPart::kQuery), false));
  ASSIGN_OR_RETURN(auto kt, g.Tensor(kK, io, KeyTransposedView(s), false));
  ASSIGN_OR_RETURN(auto o, g.Tensor(kO, io, OutHeadView(s), false));
  ASSIGN_OR_RETURN(auto stats, g.Tensor(kStats, f32, stats_view, false));
  ASSIGN_OR_RETURN(auto scale, g.Scalar(kScale));
  ASSIGN_OR_RETURN(auto negative_inf, g.Scalar(kNegativeInf));

  // S = scale * Q K^T, computed in fp32 either way.
  ASSIGN_OR_RETURN(auto qk, g.Virtual(f32, score));
  RETURN_IF_ERROR(g.Matmul(q, kt, qk));
  ASSIGN_OR_RETURN(auto scaled, g.Virtual(f32, score));
  RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_MUL, f32, qk, scale, nullptr, scaled));

  if (key.direction == SdpaDirection::kForward) {
    ASSIGN_OR_RETURN(auto v, g.Tensor(kV, io, QkvHeadView(s, QkvPart::kValue), false));
    ASSIGN_OR_RETURN(auto masked, g.CausalMask(scaled, negative_inf, score));
    // Softmax with its statistics: Stats = max + log(sum e^(S - max)).
    ASSIGN_OR_RETURN(auto row_max, g.Virtual(f32, stats_view));
    RETURN_IF_ERROR(g.Reduction(CUDNN_REDUCE_TENSOR_MAX, masked, row_max));
    ASSIGN_OR_RETURN(auto shifted, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_SUB, f32, masked, row_max, nullptr, shifted));
    ASSIGN_OR_RETURN(auto exps, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_EXP, f32, shifted, nullptr, nullptr, exps));
    ASSIGN_OR_RETURN(auto row_sum, g.Virtual(f32, stats_view));
    RETURN_IF_ERROR(g.Reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum));
    ASSIGN_OR_RETURN(auto log_sum, g.Virtual(f32, stats_view));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_LOG, f32, row_sum, nullptr, nullptr, log_sum));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_ADD, f32, row_max, log_sum, nullptr, stats));
    // P in the storage type: the second product's operand (tensor cores).
    ASSIGN_OR_RETURN(auto probs, g.Virtual(io, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_DIV, f32, exps, row_sum, nullptr, probs));
    RETURN_IF_ERROR(g.Matmul(probs, v, o));
    return std::vector<int64_t>{kQ, kK, kV, kO, kStats, kScale, kNegativeInf};
  }
  {
    ASSIGN_OR_RETURN(auto vt,
                     g.Tensor(kV, io, TransposeLastTwo(QkvHeadView(s, QkvPart::kValue)), false));
    ASSIGN_OR_RETURN(auto d_o, g.Tensor(kDO, io, OutHeadView(s), false));
    ASSIGN_OR_RETURN(auto dq, g.Tensor(kDQ, io, QkvHeadView(s, QkvPart::kQuery), false));
    ASSIGN_OR_RETURN(auto dk, g.Tensor(kDK, io, QkvHeadView(s, QkvPart::kKey), false));
    ASSIGN_OR_RETURN(auto dv, g.Tensor(kDV, io, QkvHeadView(s, QkvPart::kValue), false));
    ASSIGN_OR_RETURN(auto one, g.Scalar(kOne));
    ASSIGN_OR_RETURN(auto delta, g.Tensor(kDelta, f32, stats_view, false));
    ASSIGN_OR_RETURN(auto dq_accum, g.Tensor(kDQAccum, f32, ContiguousHeads(s), false));

    // Delta = rowsum(dO * O), kept in fp32 in the workspace.
    ASSIGN_OR_RETURN(auto do_o, g.Virtual(f32, OutHeadView(s)));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_MUL, f32, d_o, o, nullptr, do_o));
    ASSIGN_OR_RETURN(auto do_o_sum, g.Virtual(f32, stats_view));
    RETURN_IF_ERROR(g.Reduction(CUDNN_REDUCE_TENSOR_ADD, do_o, do_o_sum));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_MUL, f32, do_o_sum, one, nullptr, delta));
    // P = e^(mask(S - Stats)), recomputed.
    ASSIGN_OR_RETURN(auto centred, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_SUB, f32, scaled, stats, nullptr, centred));
    ASSIGN_OR_RETURN(auto masked, g.CausalMask(centred, negative_inf, score));
    ASSIGN_OR_RETURN(auto probs, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_EXP, f32, masked, nullptr, nullptr, probs));
    // dV = P^T dO.
    ASSIGN_OR_RETURN(auto probs_t, g.Virtual(io, TransposeLastTwo(score)));
    RETURN_IF_ERROR(g.Reshape(probs, probs_t));
    RETURN_IF_ERROR(g.Matmul(probs_t, d_o, dv));
    // dS = P (dO V^T - Delta) scale.
    ASSIGN_OR_RETURN(auto dp, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Matmul(d_o, vt, dp));
    ASSIGN_OR_RETURN(auto dp_centred, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_SUB, f32, dp, delta, nullptr, dp_centred));
    ASSIGN_OR_RETURN(auto ds_unscaled, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_MUL, f32, dp_centred, probs, nullptr, ds_unscaled));
    ASSIGN_OR_RETURN(auto ds, g.Virtual(f32, score));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_MUL, f32, ds_unscaled, scale, nullptr, ds));
    // dK = dS^T Q.
    ASSIGN_OR_RETURN(auto ds_t, g.Virtual(io, TransposeLastTwo(score)));
    RETURN_IF_ERROR(g.Reshape(ds, ds_t));
    RETURN_IF_ERROR(g.Matmul(ds_t, q, dk));
    // dQ = dS K, accumulated in fp32, then stored.
    ASSIGN_OR_RETURN(auto k, g.Virtual(io, QkvHeadView(s, QkvPart::kKey)));
    RETURN_IF_ERROR(g.Reshape(kt, k));
    RETURN_IF_ERROR(g.Matmul(ds, k, dq_accum));
    RETURN_IF_ERROR(g.Pointwise(CUDNN_POINTWISE_IDENTITY, f32, dq_accum, nullptr, nullptr, dq));
    return std::vector<int64_t>{kQ,  kK,  kV,     kO,           kDO,  kStats, kDQ,
                                kDK, kDV, kScale, kNegativeInf, kOne, kDelta, kDQAccum};
  }
}

}  // namespace

// A built graph's execution plan, the uids its variant pack lists (in the
// order the caller's pointers come), the by-value scalars it reads, and its
// workspace needs.
struct CudnnSdpa::Plan {
  std::unique_ptr<GraphBuilder> graph;  // owns the plan and what it was built from
  cudnnBackendDescriptor_t plan = nullptr;
  std::vector<int64_t> uids;
  float scale = 0.0f;
  float negative_inf = -std::numeric_limits<float>::infinity();
  float one = 1.0f;
  int64_t cudnn_workspace_bytes = 0;
  // Backward only: our fp32 buffers at the start of the workspace.
  int64_t delta_bytes = 0;
  int64_t dq_accum_bytes = 0;
};

absl::Status CudnnSdpaSupports(const AttentionShape& shape, DType dtype, SdpaDirection direction,
                               int64_t cudnn_version) {
  if (dtype != DType::kBFloat16 && dtype != DType::kFloat16) {
    return absl::UnimplementedError(
        absl::StrCat("cuDNN attention: dtype ", DTypeName(dtype), " is not bf16 or fp16"));
  }
  if (shape.head_dim % 8 != 0 || shape.head_dim > 128) {
    return absl::UnimplementedError(absl::StrCat("cuDNN attention: head_dim ", shape.head_dim,
                                                 " is not a multiple of 8 up to 128"));
  }
  if (cudnn_version < kMinCudnnVersionForSdpa) {
    return absl::UnimplementedError(absl::StrCat("cuDNN attention: cuDNN ", cudnn_version,
                                                 " is older than ", kMinCudnnVersionForSdpa));
  }
  if (direction == SdpaDirection::kBackward && cudnn_version <= 91500 && shape.seq % 128 != 0) {
    return absl::UnimplementedError(absl::StrCat("cuDNN attention backward: T = ", shape.seq,
                                                 " is not a multiple of 128, which cuDNN ",
                                                 cudnn_version, " (<= 9.15) needs"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CudnnSdpa>> CudnnSdpa::Create(std::shared_ptr<Allocator> allocator) {
  if (allocator == nullptr || !allocator->device().is_cuda()) {
    return absl::InvalidArgumentError("CudnnSdpa needs an allocator of a CUDA device");
  }
  const int64_t version = static_cast<int64_t>(cudnnGetVersion());
  if (version < kMinCudnnVersionForSdpa) {
    return absl::FailedPreconditionError(
        absl::StrCat("CudnnSdpa: the loaded cuDNN is ", version, "; fused attention needs >= ",
                     kMinCudnnVersionForSdpa, " (built against ", CUDNN_VERSION, ")"));
  }
  if (const cudaError_t error = cudaSetDevice(allocator->device().index); error != cudaSuccess) {
    return absl::UnavailableError(absl::StrCat("cudaSetDevice: ", cudaGetErrorName(error)));
  }
  cudnnHandle_t handle = nullptr;
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnCreate(&handle), "cudnnCreate");
  return std::unique_ptr<CudnnSdpa>(new CudnnSdpa(std::move(allocator), handle, version));
}

CudnnSdpa::CudnnSdpa(std::shared_ptr<Allocator> allocator, void* handle, int64_t version)
    : allocator_(std::move(allocator)), handle_(handle), version_(version) {}

CudnnSdpa::~CudnnSdpa() {
  plans_.clear();  // Descriptors go before the handle.
  cudnnDestroy(static_cast<cudnnHandle_t>(handle_));
}

absl::Status CheckCudnnSdpaGraph(const SdpaPlanKey& key) {
  GraphBuilder g(/*handle=*/nullptr);
  RETURN_IF_ERROR(AddSdpaOperations(g, key).status());
  return g.OperationGraph(SdpaPlanKeyToString(key)).status();
}

absl::StatusOr<CudnnSdpa::Plan*> CudnnSdpa::PlanFor(const SdpaPlanKey& key) {
  if (auto it = plans_.find(key); it != plans_.end()) return it->second.get();
  const std::string what = SdpaPlanKeyToString(key);
  const AttentionShape& s = key.shape;
  auto plan = std::make_unique<Plan>();
  plan->scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  if (key.direction == SdpaDirection::kBackward) {
    plan->delta_bytes = RoundUp256(s.batch * s.heads * s.seq * 4);
    plan->dq_accum_bytes = RoundUp256(s.batch * s.heads * s.seq * s.head_dim * 4);
  }
  plan->graph = std::make_unique<GraphBuilder>(static_cast<cudnnHandle_t>(handle_));
  GraphBuilder& g = *plan->graph;
  ASSIGN_OR_RETURN(plan->uids, AddSdpaOperations(g, key));
  ASSIGN_OR_RETURN(plan->plan, g.BuildPlan(what));
  TRIDENT_CUDNN_RETURN_IF_ERROR(
      cudnnBackendGetAttribute(plan->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                               CUDNN_TYPE_INT64, 1, nullptr, &plan->cudnn_workspace_bytes),
      absl::StrCat("the workspace size of ", what));
  Plan* result = plan.get();
  plans_.emplace(key, std::move(plan));
  return result;
}

absl::StatusOr<void*> CudnnSdpa::Workspace(int64_t bytes) {
  if (bytes == 0) return nullptr;
  if (!workspace_.defined() || static_cast<int64_t>(workspace_.nbytes()) < bytes) {
    // Calls are ordered on one stream, so work queued with the old workspace
    // finishes before anything reuses its memory on that stream.
    workspace_ = Tensor::Empty({(bytes + 3) / 4}, DType::kFloat32, allocator_);
  }
  return workspace_.raw_data();
}

absl::Status CudnnSdpa::Execute(cudaStream_t stream, Plan& plan,
                                const void* const* tensor_pointers) {
  const cudnnHandle_t handle = static_cast<cudnnHandle_t>(handle_);
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnSetStream(handle, stream), "cudnnSetStream");
  const int64_t ours = plan.delta_bytes + plan.dq_accum_bytes;
  ASSIGN_OR_RETURN(void* workspace, Workspace(ours + plan.cudnn_workspace_bytes));
  std::vector<void*> pointers;
  pointers.reserve(plan.uids.size());
  for (size_t i = 0; i < plan.uids.size(); ++i) {
    switch (plan.uids[i]) {
      case kScale:
        pointers.push_back(&plan.scale);
        break;
      case kNegativeInf:
        pointers.push_back(&plan.negative_inf);
        break;
      case kOne:
        pointers.push_back(&plan.one);
        break;
      case kDelta:
        pointers.push_back(workspace);
        break;
      case kDQAccum: {
        void* dq_accum = static_cast<char*>(workspace) + plan.delta_bytes;
        // cuDNN accumulates dQ here; cuDNN >= 9.6 zeroes it itself, earlier
        // versions need it zeroed. Cheap next to the attention itself.
        if (const cudaError_t error = cudaMemsetAsync(dq_accum, 0, plan.dq_accum_bytes, stream);
            error != cudaSuccess) {
          return absl::UnavailableError(
              absl::StrCat("zeroing the dQ accumulator: ", cudaGetErrorName(error)));
        }
        pointers.push_back(dq_accum);
        break;
      }
      default:
        pointers.push_back(const_cast<void*>(tensor_pointers[i]));
    }
  }
  void* cudnn_workspace =
      plan.cudnn_workspace_bytes > 0 ? static_cast<char*>(workspace) + ours : nullptr;

  ASSIGN_OR_RETURN(DescriptorPtr pack, NewDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR));
  RETURN_IF_ERROR(SetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                               static_cast<int64_t>(plan.uids.size()), plan.uids.data()));
  RETURN_IF_ERROR(SetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                               CUDNN_TYPE_VOID_PTR, static_cast<int64_t>(pointers.size()),
                               pointers.data()));
  RETURN_IF_ERROR(SetAttribute(pack.get(), CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                               1, &cudnn_workspace));
  RETURN_IF_ERROR(Finalize(pack.get(), "the variant pack"));
  TRIDENT_CUDNN_RETURN_IF_ERROR(cudnnBackendExecute(handle, plan.plan, pack.get()),
                                "cudnnBackendExecute (attention)");
  return absl::OkStatus();
}

namespace {

// The address of a view's first element inside `t`.
const void* ViewStart(const Tensor& t, const StridedView& view) {
  return static_cast<const char*>(t.raw_data()) +
         view.offset * static_cast<int64_t>(t.element_size());
}

}  // namespace

absl::Status CudnnSdpa::AttentionForward(cudaStream_t stream, const Tensor& qkv, int num_heads,
                                         const Tensor& out, const Tensor& lse) {
  ASSIGN_OR_RETURN(const AttentionShape s, CheckAttentionForwardArgs("CudnnSdpa::AttentionForward",
                                                                     qkv, num_heads, out, lse));
  RETURN_IF_ERROR(CudnnSdpaSupports(s, qkv.dtype(), SdpaDirection::kForward, version_));
  if (s.batch * s.seq == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      Plan * plan,
      PlanFor({.shape = s, .dtype = qkv.dtype(), .direction = SdpaDirection::kForward}));
  // In plan->uids order: Q, K^T, V, O, Stats (scalars filled by Execute).
  const void* pointers[] = {ViewStart(qkv, QkvHeadView(s, QkvPart::kQuery)),
                            ViewStart(qkv, QkvHeadView(s, QkvPart::kKey)),
                            ViewStart(qkv, QkvHeadView(s, QkvPart::kValue)),
                            out.raw_data(),
                            lse.raw_data(),
                            nullptr,
                            nullptr};
  return Execute(stream, *plan, pointers);
}

absl::Status CudnnSdpa::AttentionBackward(cudaStream_t stream, const Tensor& qkv, const Tensor& out,
                                          const Tensor& lse, const Tensor& dout, int num_heads,
                                          const Tensor& dqkv) {
  ASSIGN_OR_RETURN(const AttentionShape s,
                   CheckAttentionBackwardArgs("CudnnSdpa::AttentionBackward", qkv, out, lse, dout,
                                              num_heads, dqkv));
  RETURN_IF_ERROR(CudnnSdpaSupports(s, qkv.dtype(), SdpaDirection::kBackward, version_));
  if (s.batch * s.seq == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(
      Plan * plan,
      PlanFor({.shape = s, .dtype = qkv.dtype(), .direction = SdpaDirection::kBackward}));
  // In plan->uids order: Q, K^T, V^T, O, dO, Stats, dQ, dK, dV (then the
  // scalars and workspace buffers, filled by Execute).
  const void* pointers[] = {ViewStart(qkv, QkvHeadView(s, QkvPart::kQuery)),
                            ViewStart(qkv, QkvHeadView(s, QkvPart::kKey)),
                            ViewStart(qkv, QkvHeadView(s, QkvPart::kValue)),
                            out.raw_data(),
                            dout.raw_data(),
                            lse.raw_data(),
                            ViewStart(dqkv, QkvHeadView(s, QkvPart::kQuery)),
                            ViewStart(dqkv, QkvHeadView(s, QkvPart::kKey)),
                            ViewStart(dqkv, QkvHeadView(s, QkvPart::kValue)),
                            nullptr,
                            nullptr,
                            nullptr,
                            nullptr,
                            nullptr};
  return Execute(stream, *plan, pointers);
}

}  // namespace trident::cuda
