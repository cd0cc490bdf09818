#ifndef TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_
#define TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_

// Helpers for this package's tests: fresh directories under TEST_TMPDIR and
// raw file surgery (truncate, flip a byte) that bypasses the atomic writer.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace trident::checkpoint::testing {

// An empty directory `$TEST_TMPDIR/<name>` (removed first if it exists).
std::string FreshTestDir(absl::string_view name);

// `size` deterministic pseudo-random bytes derived from `seed`.
std::vector<std::byte> PatternBytes(size_t size, uint64_t seed);

std::string ReadWholeFile(const std::string& path);
// Plain (non-atomic) write, for planting damaged files.
void WriteWholeFile(const std::string& path, absl::string_view contents);
void TruncateFile(const std::string& path, uint64_t size);
// XORs the byte at `offset` with 0x01.
void FlipByte(const std::string& path, uint64_t offset);

}  // namespace trident::checkpoint::testing

#endif  // TRIDENT_TRAINING_CHECKPOINT_TEST_UTIL_H_
