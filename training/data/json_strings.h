#ifndef TRIDENT_TRAINING_DATA_JSON_STRINGS_H_
#define TRIDENT_TRAINING_DATA_JSON_STRINGS_H_

// The small part of JSON that GPT-2's encoder.json needs: one flat object whose
// keys are strings (all JSON escapes, \uXXXX surrogate pairs included) and whose
// values are integers. Errors name the byte offset and what was expected.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::data {

// Parses the JSON string literal that starts at text[*pos] (a '"'), returns its
// value as UTF-8 and moves *pos past the closing quote.
absl::StatusOr<std::string> ParseJsonString(absl::string_view text, size_t* pos);

// Parses `{"key": 123, ...}` (whitespace allowed, nothing after the object),
// keeping the members in file order. Duplicate keys are kept; the caller decides.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text);

// Appends the UTF-8 encoding of a Unicode scalar value (not a surrogate).
void AppendUtf8(uint32_t code_point, std::string* out);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_JSON_STRINGS_H_
