#ifndef TRIDENT_TRAINING_DATA_TEST_UTIL_H_
#define TRIDENT_TRAINING_DATA_TEST_UTIL_H_

// Helpers for the data tests: scratch paths and the GPT-2 files.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace trident::data::testing {

// A fresh path under $TEST_TMPDIR (or /tmp) named after the running test.
std::string TempPath(absl::string_view name);

// Writes `bytes` to `path` plainly (tests craft broken files with it).
void WriteBytes(const std::string& path, absl::string_view bytes);

// The directory holding GPT-2's encoder.json and vocab.bpe, when the test can
// find one: $TRIDENT_GPT2_DIR, then data/gpt2 in the runfiles, then data/gpt2
// of the source tree this test's runfiles link to (tools/fetch_gpt2_bpe.sh
// writes it there).
std::optional<std::string> FindGpt2Dir();

}  // namespace trident::data::testing

#endif  // TRIDENT_TRAINING_DATA_TEST_UTIL_H_
