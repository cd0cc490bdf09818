#include "data_parallel/compression/int8_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"

namespace trident::data_parallel {
namespace {

float MaxAbs(const float* x, int64_t count) {
  float max_abs = 0.0f;
  for (int64_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
  return max_abs;
}

int8_t Quantize(float x, float scale) {
  return static_cast<int8_t>(std::nearbyint(x / scale));  // |x / scale| <= 127.
}

// Quantises and dequantises one block in place.
void RoundTripBlock(float* x, int64_t count) {
  const float scale = Int8BlockScale(MaxAbs(x, count));
  for (int64_t i = 0; i < count; ++i) x[i] = Quantize(x[i], scale) * scale;
}

template <bool kAccumulate>
void DecodeBlocks(const void* wire, int64_t count, float* data) {
  const int32_t* words = static_cast<const int32_t*>(wire);
  for (int64_t start = 0; start < count; start += kInt8Block) {
    const int64_t length = std::min(kInt8Block, count - start);
    float scale;
    std::memcpy(&scale, words, sizeof(scale));
    const int8_t* q = reinterpret_cast<const int8_t*>(words + 1);
    for (int64_t i = 0; i < length; ++i) {
      const float value = static_cast<float>(q[i]) * scale;
      if constexpr (kAccumulate) {
        data[start + i] += value;
      } else {
        data[start + i] = value;
      }
    }
    words += Int8WireWords(length);
  }
}

}  // namespace

float Int8BlockScale(float max_abs) {
  if (!(max_abs > 0.0f) || std::isinf(max_abs)) return 1.0f;
  int exponent = 0;
  std::frexp(max_abs / 127.0f, &exponent);
  float scale = std::ldexp(1.0f, std::max(exponent, -126));
  // frexp of a rounded quotient may be one off: settle with exact tests.
  while (max_abs / scale > 127.0f) scale *= 2.0f;
  while (scale > 0x1.0p-126f && max_abs / (scale * 0.5f) <= 127.0f) scale *= 0.5f;
  return scale;
}

int64_t Int8WireWords(int64_t count) {
  const int64_t full = count / kInt8Block;
  const int64_t rest = count % kInt8Block;
  return full * (1 + kInt8Block / 4) + (rest > 0 ? 1 + (rest + 3) / 4 : 0);
}

void Int8Codec::Encode(const void* data, int64_t count, void* wire) const {
  const float* x = static_cast<const float*>(data);
  int32_t* words = static_cast<int32_t*>(wire);
  for (int64_t start = 0; start < count; start += kInt8Block) {
    const int64_t length = std::min(kInt8Block, count - start);
    const float scale = Int8BlockScale(MaxAbs(x + start, length));
    const int64_t block_words = Int8WireWords(length);
    std::memset(words, 0, block_words * sizeof(int32_t));
    std::memcpy(words, &scale, sizeof(scale));
    int8_t* q = reinterpret_cast<int8_t*>(words + 1);
    for (int64_t i = 0; i < length; ++i) q[i] = Quantize(x[start + i], scale);
    words += block_words;
  }
}

void Int8Codec::DecodeAccumulate(const void* wire, int64_t count, void* data) const {
  DecodeBlocks<true>(wire, count, static_cast<float*>(data));
}

void Int8Codec::DecodeCopy(const void* wire, int64_t count, void* data) const {
  DecodeBlocks<false>(wire, count, static_cast<float*>(data));
}

void Int8QuantizeWithErrorFeedback(int ranks, absl::Span<float> gradient,
                                   absl::Span<float> residual) {
  TRIDENT_CHECK_EQ(gradient.size(), residual.size());
  const int64_t count = static_cast<int64_t>(gradient.size());
  for (int64_t i = 0; i < count; ++i) gradient[i] += residual[i];  // v, held in `gradient`.
  for (int64_t i = 0; i < count; ++i) residual[i] = gradient[i];   // v, kept for the difference.
  for (int s = 0; s < ranks; ++s) {
    const comm::RingSegment segment = comm::RingSegmentOf(count, ranks, s);
    for (int64_t start = 0; start < segment.count; start += kInt8Block) {
      RoundTripBlock(gradient.data() + segment.offset + start,
                     std::min(kInt8Block, segment.count - start));
    }
  }
  for (int64_t i = 0; i < count; ++i) residual[i] -= gradient[i];  // v - sent, exact.
}

}  // namespace trident::data_parallel
