#ifndef TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_SHAPE_H_
#define TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_SHAPE_H_

// Host-side facts of one attention call on the GPU, shared by the cuDNN path
// and the fallback kernels: the argument checks (core/ops/attention.h's
// contract plus what the GPU needs: one float dtype for the activations, lse in
// fp32, every tensor on one CUDA device), the head-major [B, H, T, D] views of
// the packed qkv/out tensors (how cuDNN sees them without copies), and the key
// under which a built cuDNN plan is cached.
//
// Layouts (core/ops/attention.h): qkv [B, T, 3C] with C = H * D and the last
// dim [3][H][D]; out, dout [B, T, C] with the last dim [H][D]; lse [B, H, T].

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::cuda {

struct AttentionShape {
  int64_t batch = 0;
  int64_t seq = 0;
  int64_t heads = 0;
  int64_t head_dim = 0;

  int64_t channels() const { return heads * head_dim; }  // C

  friend bool operator==(const AttentionShape&, const AttentionShape&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const AttentionShape& s) {
    return H::combine(std::move(h), s.batch, s.seq, s.heads, s.head_dim);
  }
};

// "B=2 T=1024 H=12 D=64" for logs and errors.
std::string AttentionShapeToString(const AttentionShape& shape);

// Checks AttentionForward's arguments and returns their dims. INVALID_ARGUMENT
// naming `op` and the argument: an undefined tensor, qkv not 3-d, num_heads
// <= 0, a last dim of qkv that is not 3 * num_heads * head_dim, out/lse of the
// wrong shape, non-contiguous tensors, qkv/out not one float dtype (fp32, bf16,
// fp16), lse not fp32, and (checked last, so the structure of a call can be
// tested without a GPU) tensors not all on one CUDA device.
absl::StatusOr<AttentionShape> CheckAttentionForwardArgs(absl::string_view op, const Tensor& qkv,
                                                         int num_heads, const Tensor& out,
                                                         const Tensor& lse);

// The same for AttentionBackward: dout like out, dqkv like qkv, both of qkv's
// dtype.
absl::StatusOr<AttentionShape> CheckAttentionBackwardArgs(absl::string_view op, const Tensor& qkv,
                                                          const Tensor& out, const Tensor& lse,
                                                          const Tensor& dout, int num_heads,
                                                          const Tensor& dqkv);

// A strided 4-d view into a packed tensor, in elements: element (i0, i1, i2,
// i3) is at base + offset + sum_k index_k * strides[k].
struct StridedView {
  int64_t offset = 0;
  std::array<int64_t, 4> dims{};
  std::array<int64_t, 4> strides{};

  friend bool operator==(const StridedView&, const StridedView&) = default;
};

// Which third of qkv's last dim.
enum class QkvPart : int { kQuery = 0, kKey = 1, kValue = 2 };

// Q, K or V (or dQ, dK, dV) as [B, H, T, D] inside qkv [B, T, 3C]: offset
// part * C, strides {T * 3C, D, 3C, 1}.
StridedView QkvHeadView(const AttentionShape& shape, QkvPart part);

// `view` with its last two dims and their strides swapped: the transpose a
// matmul reads (K^T, V^T, P^T, dS^T) without moving any element.
StridedView TransposeLastTwo(StridedView view);

// K^T as [B, H, D, T] inside qkv (the first product's right operand):
// TransposeLastTwo of K's view.
StridedView KeyTransposedView(const AttentionShape& shape);

// out (or dout) as [B, H, T, D] inside [B, T, C]: strides {T * C, D, C, 1}.
StridedView OutHeadView(const AttentionShape& shape);

// lse [B, H, T] as the softmax statistics [B, H, T, 1] cuDNN reads and writes:
// strides {H * T, T, 1, 1}.
StridedView StatsView(const AttentionShape& shape);

// The attention score matrix [B, H, T, T], row-major per (batch, head): the
// layout of the virtual intermediate tensors of a cuDNN graph.
StridedView ScoreView(const AttentionShape& shape);

enum class SdpaDirection : uint8_t { kForward, kBackward };

// What decides a cuDNN SDPA execution plan: the graph is built, its engine
// chosen and the plan finalised once per distinct key.
struct SdpaPlanKey {
  AttentionShape shape;
  DType dtype = DType::kBFloat16;
  SdpaDirection direction = SdpaDirection::kForward;

  friend bool operator==(const SdpaPlanKey&, const SdpaPlanKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const SdpaPlanKey& key) {
    return H::combine(std::move(h), key.shape, key.dtype, key.direction);
  }
};

// "fwd bf16 B=2 T=1024 H=12 D=64".
std::string SdpaPlanKeyToString(const SdpaPlanKey& key);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_SHAPE_H_
