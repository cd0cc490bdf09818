#ifndef TRIDENT_TRAINING_DATA_CRC32C_H_
#define TRIDENT_TRAINING_DATA_CRC32C_H_

// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78), the checksum of token
// files. It is the CRC that x86 computes in hardware (SSE 4.2 `crc32`), so a
// linear pass over a mapped file costs a fraction of reading it.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace trident::data {

// Extends `crc` (the value returned for the preceding bytes; 0 to start) over
// `size` more bytes. Crc32c(Crc32c(0, a), b) == Crc32c(0, a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(absl::string_view bytes) {
  return Crc32cExtend(0, bytes.data(), bytes.size());
}

// The portable table-driven form; the same results as Crc32cExtend. Exposed so
// tests can check the hardware path against it.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_CRC32C_H_
