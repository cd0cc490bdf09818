#include "data_parallel/compression/scaled_half_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"

namespace trident::data_parallel {

float DynamicHalfScale(float max_abs) {
  if (!(max_abs > 0.0f) || std::isinf(max_abs)) return 1.0f;
  int exponent = 0;
  std::frexp(max_abs, &exponent);  // max_abs in [2^(exponent-1), 2^exponent).
  return std::ldexp(1.0f, std::clamp(15 - exponent, -126, 127));
}

ScaledHalfCodec::ScaledHalfCodec(DType wire, CompressionScaling scaling, float static_scale)
    : wire_(wire), scaling_(scaling), static_scale_(static_scale) {
  TRIDENT_CHECK(wire == DType::kBFloat16 || wire == DType::kFloat16) << DTypeName(wire);
  TRIDENT_CHECK(static_scale > 0.0f);
}

void ScaledHalfCodec::Encode(const void* data, int64_t count, void* wire) const {
  const float* x = static_cast<const float*>(data);
  float scale = static_scale_;
  if (scaling_ == CompressionScaling::kDynamic) {
    float max_abs = 0.0f;
    for (int64_t i = 0; i < count; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    scale = DynamicHalfScale(max_abs);
  }
  uint16_t* out = static_cast<uint16_t*>(wire);
  std::memcpy(out, &scale, sizeof(scale));
  out += kHeaderElements;
  if (wire_ == DType::kBFloat16) {
    for (int64_t i = 0; i < count; ++i) out[i] = ToBFloat16(x[i] * scale).bits;
  } else {
    for (int64_t i = 0; i < count; ++i) out[i] = ToFloat16(x[i] * scale).bits;
  }
}

template <bool kAccumulate>
void ScaledHalfCodec::Decode(const void* wire, int64_t count, float* data) const {
  const uint16_t* in = static_cast<const uint16_t*>(wire);
  float scale;
  std::memcpy(&scale, in, sizeof(scale));
  in += kHeaderElements;
  const float unscale = 1.0f / scale;  // Exact: the scale is a power of two.
  for (int64_t i = 0; i < count; ++i) {
    const float value = (wire_ == DType::kBFloat16 ? ToFloat(BFloat16{in[i]})
                                                   : ToFloat(Float16{in[i]})) *
                        unscale;
    if constexpr (kAccumulate) {
      data[i] += value;
    } else {
      data[i] = value;
    }
  }
}

void ScaledHalfCodec::DecodeAccumulate(const void* wire, int64_t count, void* data) const {
  Decode<true>(wire, count, static_cast<float*>(data));
}

void ScaledHalfCodec::DecodeCopy(const void* wire, int64_t count, void* data) const {
  Decode<false>(wire, count, static_cast<float*>(data));
}

}  // namespace trident::data_parallel
