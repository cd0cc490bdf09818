#include "training/checkpoint/test_util.h"

#include <unistd.h>

#include "core/check.h"

namespace trident::checkpoint::testing {
namespace {

// SplitMix64's output function: a bijective mix of all 64 bits.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::byte> PatternBytes(size_t size, uint64_t seed) {
  std::vector<std::byte> bytes(size);
  // The start is a mixed seed, so streams of nearby seeds do not overlap.
  uint64_t state = Mix(seed ^ 0x6A09E667F3BCC909ull);
  for (size_t i = 0; i < size; ++i) {
    state += 0x9E3779B97F4A7C15ull;
    bytes[i] = static_cast<std::byte>(Mix(state) & 0xFF);
  }
  return bytes;
}

void TruncateFile(const std::string& path, uint64_t size) {
  TRIDENT_CHECK(::truncate(path.c_str(), static_cast<off_t>(size)) == 0) << path;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::string contents = ReadWholeFile(path);
  TRIDENT_CHECK_LT(offset, contents.size());
  contents[offset] = static_cast<char>(contents[offset] ^ 0x01);
  WriteWholeFile(path, contents);
}

}  // namespace trident::checkpoint::testing
