#ifndef TRIDENT_CORE_IO_CRC32C_H_
#define TRIDENT_CORE_IO_CRC32C_H_

// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the checksum
// of iSCSI, ext4 and the project's own file formats (checkpoint tensor files,
// token files). Computed with the SSE4.2 crc32 instruction where the build
// targets it (x86-64-v3 does), with a table-driven fallback.
//
// Conventions are the usual ones: initial value and final xor 0xFFFFFFFF, so
// Crc32c("123456789") == 0xE3069283. `Crc32cExtend(Crc32c(a), b)` equals
// `Crc32c(a + b)`, which lets a writer checksum a file as it streams it.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trident::io {

// The CRC of `size` bytes at `data`, continuing from `crc` (the CRC of the
// bytes before them; 0 for the empty prefix).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }
inline uint32_t Crc32c(absl::Span<const std::byte> bytes) {
  return Crc32c(bytes.data(), bytes.size());
}
inline uint32_t Crc32c(absl::string_view text) { return Crc32c(text.data(), text.size()); }

namespace internal {

// The two implementations behind Crc32cExtend, exposed so tests can compare them.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size);
// Same as the portable one when the build has no SSE4.2 (then it forwards).
uint32_t Crc32cExtendHardware(uint32_t crc, const void* data, size_t size);
// Whether Crc32cExtendHardware really uses the crc32 instruction.
bool Crc32cHasHardware();

}  // namespace internal
}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_CRC32C_H_
