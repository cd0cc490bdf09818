#ifndef TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_TEST_UTIL_H_
#define TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_TEST_UTIL_H_

// One comparison of a GPU attention implementation (forward then backward)
// against the CPU twin, core/ops/attention.h on a CPU context, on fresh random
// inputs: qkv uniform in [-2, 2) (scores of standard deviation ~1.3 at D = 64,
// so the softmax is neither flat nor one-hot), dout uniform in [-1, 1), both
// rounded to the storage dtype on the host so both sides compute from the same
// values; out, lse and dqkv poisoned with NaN before each run; NaN never passes.
//
// Scales (the error bound of element k is tolerance * scale[k]):
//   out, dQ, dK, dV: max(|expected_k|, RMS of that tensor) -- each is a sum of
//     terms of both signs (a weighted mean of V, sums of P- and dS-weighted
//     rows), so elements near zero are judged against the tensor's typical size;
//     the three thirds of dqkv have their own RMS.
//   lse: max(|expected_k|, 1).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/device.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::cuda {

struct AttentionCase {
  DType dtype = DType::kFloat32;
  int64_t batch = 2;
  int64_t seq = 64;
  int heads = 4;
  int64_t head_dim = 64;

  std::string Name() const;  // "bf16_B2_T100_H4_D64"
};

struct AttentionTolerances {
  double out = 1e-5;
  double lse = 1e-5;
  double grad = 1e-5;
};

using AttentionForwardFn = std::function<absl::Status(const Tensor& qkv, int num_heads,
                                                      const Tensor& out, const Tensor& lse)>;
using AttentionBackwardFn =
    std::function<absl::Status(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                               const Tensor& dout, int num_heads, const Tensor& dqkv)>;

// Runs `forward` then `backward` (on the forward's own out and lse) on
// `allocator`'s device, synchronises, and adds a gtest failure for every
// element outside its bound. `seed` is printed with any failure.
void ExpectAttentionMatchesCpu(const std::shared_ptr<Allocator>& allocator, const AttentionCase& c,
                               const AttentionForwardFn& forward,
                               const AttentionBackwardFn& backward,
                               const AttentionTolerances& tolerances, uint32_t seed);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_ATTENTION_ATTENTION_TEST_UTIL_H_
