#ifndef TRIDENT_TRAINING_CHECKPOINT_LITTLE_ENDIAN_H_
#define TRIDENT_TRAINING_CHECKPOINT_LITTLE_ENDIAN_H_

// Fixed-width little-endian encoding, written byte by byte so the file formats
// do not depend on the host's byte order.

#include <cstddef>
#include <cstdint>
#include <string>

namespace trident::checkpoint {

template <typename Unsigned>
void AppendLittleEndian(Unsigned value, std::string* out) {
  for (size_t i = 0; i < sizeof(Unsigned); ++i) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(value >> (8 * i))));
  }
}

template <typename Unsigned>
Unsigned LoadLittleEndian(const void* data) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  Unsigned value = 0;
  for (size_t i = 0; i < sizeof(Unsigned); ++i) {
    value |= static_cast<Unsigned>(bytes[i]) << (8 * i);
  }
  return value;
}

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_LITTLE_ENDIAN_H_
