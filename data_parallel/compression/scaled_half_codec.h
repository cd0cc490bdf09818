#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_SCALED_HALF_CODEC_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_SCALED_HALF_CODEC_H_

// bf16 / fp16 transport with fp32 accumulation (Megatron's
// reduce_scatter_with_fp32_accumulation, written as a ring): every hop of
// comm::RingAllReduce sends its partial sums as 16-bit floats, scaled before
// the cast and unscaled after, and the receiver adds them to its own fp32
// partial sums. Only the wire is 16-bit: each hop rounds once, sums stay fp32.
//
// Wire format of a message of `count` elements: two 16-bit words holding the
// fp32 bits of the message's scale, then the `count` scaled, rounded values
// (round to nearest, ties to even). Scales are powers of two, so scaling and
// unscaling are exact; the cast is the only rounding.

#include <cstdint>

#include "core/comm/allreduce_algorithms.h"
#include "core/dtype.h"
#include "data_parallel/compression/gradient_sync_options.h"

namespace trident::data_parallel {

// The dynamic scale of values whose largest magnitude is `max_abs`: the power
// of two that brings it into [2^14, 2^15) (1 for 0, infinity or NaN),
// limited to [2^-126, 2^127].
float DynamicHalfScale(float max_abs);

class ScaledHalfCodec final : public comm::RingCodec {
 public:
  // `wire` is kBFloat16 or kFloat16; `static_scale` is used with kStatic.
  ScaledHalfCodec(DType wire, CompressionScaling scaling, float static_scale);

  DType wire_dtype() const override { return wire_; }
  int64_t WireCount(int64_t count) const override { return count + kHeaderElements; }
  void Encode(const void* data, int64_t count, void* wire) const override;
  void DecodeAccumulate(const void* wire, int64_t count, void* data) const override;
  void DecodeCopy(const void* wire, int64_t count, void* data) const override;

  static constexpr int64_t kHeaderElements = 2;  // The fp32 scale.

 private:
  template <bool kAccumulate>
  void Decode(const void* wire, int64_t count, float* data) const;

  DType wire_;
  CompressionScaling scaling_;
  float static_scale_;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_SCALED_HALF_CODEC_H_
