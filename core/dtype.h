#ifndef TRIDENT_CORE_DTYPE_H_
#define TRIDENT_CORE_DTYPE_H_

// Element types of tensors and communication buffers, and the 16-bit float
// formats as plain storage types with exact conversions to and from float.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident {

enum class DType : uint8_t {
  kFloat32 = 0,
  kBFloat16 = 1,
  kFloat16 = 2,
  kInt32 = 3,
  kInt64 = 4,
};

// Bytes per element.
size_t DTypeSize(DType dtype);

// "fp32", "bf16", "fp16", "int32", "int64".
absl::string_view DTypeName(DType dtype);

// Inverse of DTypeName; also accepts "float32", "bfloat16", "float16".
absl::StatusOr<DType> ParseDType(absl::string_view name);

bool IsFloatingPoint(DType dtype);

// bfloat16: the upper half of an IEEE float32.
struct BFloat16 {
  uint16_t bits = 0;
};

// IEEE 754 binary16.
struct Float16 {
  uint16_t bits = 0;
};

inline float ToFloat(BFloat16 value) {
  const uint32_t bits = static_cast<uint32_t>(value.bits) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

// Round to nearest, ties to even; NaN stays NaN (quiet).
inline BFloat16 ToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a NaN after truncation.
    return BFloat16{static_cast<uint16_t>((bits >> 16) | 0x0040u)};
  }
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return BFloat16{static_cast<uint16_t>((bits + rounding_bias) >> 16)};
}

float ToFloat(Float16 value);

// Round to nearest, ties to even; overflow gives infinity; subnormals kept.
Float16 ToFloat16(float value);

// The DType of a C++ element type.
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::kBFloat16;
};
template <>
struct DTypeOf<Float16> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::kInt32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::kInt64;
};

}  // namespace trident

#endif  // TRIDENT_CORE_DTYPE_H_
