#ifndef TRIDENT_CORE_IO_UTF8_H_
#define TRIDENT_CORE_IO_UTF8_H_

// The two UTF-8 operations the file formats need: encoding one code point
// (JSON \u escapes, GPT-2's byte alphabet) and validating text (JSON documents
// and safetensors names must be UTF-8).

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace trident::io {

// Appends the UTF-8 encoding (1 to 4 bytes) of a Unicode scalar value: a code
// point up to U+10FFFF that is not a surrogate (U+D800..U+DFFF).
void AppendUtf8(uint32_t code_point, std::string* out);

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates,
// nothing beyond U+10FFFF, no truncated sequence).
bool IsValidUtf8(absl::string_view text);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_UTF8_H_
