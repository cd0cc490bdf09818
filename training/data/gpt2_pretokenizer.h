#ifndef TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_
#define TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_

// GPT-2's pre-tokenisation: the split of text into "words" that BPE then encodes
// one at a time. OpenAI's encoder does it with the regular expression
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// which runs here, as written, through PCRE2 in UTF mode with Unicode
// properties (PCRE2_UTF | PCRE2_UCP): \p{L} and \p{N} are Unicode's letter and
// number categories and \s is Unicode white space, as in Python's `regex`
// module that OpenAI's encoder.py uses. (The npm package gpt-3-encoder, the
// reference of the tests, runs the same pattern in JavaScript, whose \s also
// counts U+FEFF; the two agree everywhere else that matters for text.) The
// pattern is compiled once (JIT when available); each call has its own match
// data, so SplitGpt2Words is safe to call from many threads.
//
// Bytes that are not valid UTF-8 match nothing in the pattern: each maximal
// run of them becomes a piece of its own, so the pieces always concatenate to
// the input.

#include <vector>

#include "absl/strings/string_view.h"

namespace trident::data {

// Splits `text` into GPT-2 words; concatenating them gives back `text` exactly.
std::vector<absl::string_view> SplitGpt2Words(absl::string_view text);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_
