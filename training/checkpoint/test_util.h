#ifndef TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_
#define TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_

// Helpers for this package's tests: fresh directories under TEST_TMPDIR and
// raw file surgery (truncate, flip a byte) that bypasses the atomic writer.
// The directory and whole-file helpers are core/io's, re-exported here so the
// tests name one namespace.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/io/test_util.h"

namespace trident::checkpoint::testing {

using ::trident::io::testing::FreshTestDir;
using ::trident::io::testing::ReadWholeFile;
using ::trident::io::testing::WriteWholeFile;

// `size` deterministic pseudo-random bytes derived from `seed`.
std::vector<std::byte> PatternBytes(size_t size, uint64_t seed);

void TruncateFile(const std::string& path, uint64_t size);
// XORs the byte at `offset` with 0x01.
void FlipByte(const std::string& path, uint64_t offset);

}  // namespace trident::checkpoint::testing

#endif  // TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_
