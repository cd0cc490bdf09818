#ifndef TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_
#define TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_

// GPT-2's pre-tokenisation: the split of text into "words" that BPE then encodes
// one at a time. OpenAI's encoder does it with the regular expression
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// which runs here, as written, through PCRE2 in UTF mode with Unicode
// properties (PCRE2_UTF | PCRE2_UCP): \p{L} and \p{N} are Unicode's letter and
// number categories, \s is white space. The npm package gpt-3-encoder, the
// reference of the tests, runs the same pattern in JavaScript; the two agree
// on letters, numbers and white space except for three characters, checked
// with PCRE2 10.42 and node 20: U+0085 (NEXT LINE) and U+180E (MONGOLIAN
// VOWEL SEPARATOR) are \s to PCRE2 only, U+FEFF (BYTE ORDER MARK) to
// JavaScript only. The pattern is compiled once (JIT when available); each
// call has its own match data, so SplitGpt2Words is safe to call from many
// threads.
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
