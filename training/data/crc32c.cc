#include "training/data/crc32c.h"

#include <array>
#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace trident::data {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;

// table[b] is the CRC register after shifting the byte b through it.
constexpr std::array<uint32_t, 256> MakeByteTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1u) ? (crc >> 1) ^ kCastagnoliReflected : crc >> 1;
    }
    table[b] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kByteTable = MakeByteTable();

}  // namespace

uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t reg = ~crc;
  for (size_t i = 0; i < size; ++i) {
    reg = kByteTable[(reg ^ bytes[i]) & 0xffu] ^ (reg >> 8);
  }
  return ~reg;
}

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
#if defined(__SSE4_2__)
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t reg = static_cast<uint32_t>(~crc);
  // Three independent streams would hide the instruction's latency; one stream
  // already runs at several GB/s, far above what reading the file costs.
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, bytes, sizeof(word));
    reg = _mm_crc32_u64(reg, word);
    bytes += 8;
    size -= 8;
  }
  uint32_t reg32 = static_cast<uint32_t>(reg);
  while (size > 0) {
    reg32 = _mm_crc32_u8(reg32, *bytes);
    ++bytes;
    --size;
  }
  return ~reg32;
#else
  return Crc32cExtendPortable(crc, data, size);
#endif
}

}  // namespace trident::data
