#ifndef TRIDENT_CORE_IO_LITTLE_ENDIAN_H_
#define TRIDENT_CORE_IO_LITTLE_ENDIAN_H_

// Fixed-width little-endian encoding, written byte by byte so the file formats
// do not depend on the host's byte order.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace trident::io {

template <typename Unsigned>
void AppendLittleEndian(Unsigned value, std::string* out) {
  static_assert(std::is_unsigned_v<Unsigned>, "encode the unsigned form of the value");
  for (size_t i = 0; i < sizeof(Unsigned); ++i) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(value >> (8 * i))));
  }
}

// Reads sizeof(Unsigned) bytes at `data`.
template <typename Unsigned>
Unsigned LoadLittleEndian(const void* data) {
  static_assert(std::is_unsigned_v<Unsigned>, "decode into the unsigned form of the value");
  const auto* bytes = static_cast<const uint8_t*>(data);
  Unsigned value = 0;
  for (size_t i = 0; i < sizeof(Unsigned); ++i) {
    value |= static_cast<Unsigned>(bytes[i]) << (8 * i);
  }
  return value;
}

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_LITTLE_ENDIAN_H_
