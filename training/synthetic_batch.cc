#include "training/synthetic_batch.h"

#include <vector>

namespace trident::training {
namespace {

// SplitMix64's finaliser: a bijection of 64-bit words with good avalanche.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

void SyntheticRows(uint64_t seed, int64_t step, data::RowRange rows, int64_t seq, int64_t vocab,
                   Tensor* inputs, Tensor* targets) {
  std::vector<int32_t> in(rows.count * seq), out(rows.count * seq);
  const uint64_t step_key = Mix(seed ^ Mix(static_cast<uint64_t>(step)));
  for (int64_t r = 0; r < rows.count; ++r) {
    const uint64_t row_key = Mix(step_key ^ static_cast<uint64_t>(rows.begin + r));
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t i = r * seq + t;
      in[i] = static_cast<int32_t>(Mix(row_key + static_cast<uint64_t>(t)) %
                                   static_cast<uint64_t>(vocab));
      out[i] = static_cast<int32_t>((5 * int64_t{in[i]} + 3) % vocab);
    }
  }
  *inputs = Tensor::FromVector(in, {rows.count, seq});
  *targets = Tensor::FromVector(out, {rows.count, seq});
}

}  // namespace trident::training
