#ifndef TRIDENT_CORE_IO_TEST_UTIL_H_
#define TRIDENT_CORE_IO_TEST_UTIL_H_

// Helpers for tests that work on real files: fresh directories under
// $TEST_TMPDIR and plain (non-atomic) reads and writes, for checking what the
// library wrote and for planting damaged files. Each aborts on failure.

#include <string>

#include "absl/strings/string_view.h"

namespace trident::io::testing {

// An empty directory `$TEST_TMPDIR/<name>` (removed first if it exists).
std::string FreshTestDir(absl::string_view name);

std::string ReadWholeFile(const std::string& path);
// Plain (non-atomic) write, truncating what was there.
void WriteWholeFile(const std::string& path, absl::string_view contents);

}  // namespace trident::io::testing

#endif  // TRIDENT_CORE_IO_TEST_UTIL_H_
