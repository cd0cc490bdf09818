#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_INT8_CODEC_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_INT8_CODEC_H_

// int8 quantisation with a scale per block of kInt8Block elements, carried by
// comm::RingAllReduce: each reduce-scatter hop quantises its fp32 partial
// sums, the receiver dequantises and adds them to its own in fp32, and the
// finished sums travel the all-gather quantised once.
//
// A block's scale s is the smallest power of two with max|x| / s <= 127, and
// q = round-to-nearest-even(x / s) in [-127, 127]; dequantising gives q * s.
// Both divisions and products are exact (powers of two), so the rounding to
// integers is the only loss, |x - q s| <= s / 2, and a block that already
// holds values of the form q * s passes through unchanged (its scale can only
// shrink by a power of two, which keeps every q an integer).
//
// Wire format (int32 words) per block: the fp32 bits of s, then the block's q
// packed four to a word (the last word zero-padded).
//
// Error feedback (Int8QuantizeWithErrorFeedback) quantises each rank's own
// contribution with the blocks the ring will use, so the ring's first hop
// sends it without further loss; the re-quantisation of partial sums at later
// hops is not fed back (no rank owns that error).

#include <cstdint>

#include "absl/types/span.h"
#include "core/comm/allreduce_algorithms.h"

namespace trident::data_parallel {

inline constexpr int64_t kInt8Block = 2048;

// The block scale of values whose largest magnitude is `max_abs` (1 for 0).
float Int8BlockScale(float max_abs);

// Words of a message of `count` elements.
int64_t Int8WireWords(int64_t count);

class Int8Codec final : public comm::RingCodec {
 public:
  DType wire_dtype() const override { return DType::kInt32; }
  int64_t WireCount(int64_t count) const override { return Int8WireWords(count); }
  void Encode(const void* data, int64_t count, void* wire) const override;
  void DecodeAccumulate(const void* wire, int64_t count, void* data) const override;
  void DecodeCopy(const void* wire, int64_t count, void* data) const override;
};

// Error feedback for rank contributions to an int8 ring of `ranks` members:
// v = gradient + residual, sent = dequantise(quantise(v)) over the ring's
// blocks (kInt8Block elements from the start of each ring segment), residual
// = v - sent, and `gradient` becomes `sent`. sent + residual == v exactly: for
// q = 0 the residual is v itself, otherwise sent and v are within a factor 2
// of each other and their difference is exact (Sterbenz's lemma).
void Int8QuantizeWithErrorFeedback(int ranks, absl::Span<float> gradient,
                                   absl::Span<float> residual);

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_INT8_CODEC_H_
