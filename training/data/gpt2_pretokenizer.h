#ifndef TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_
#define TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_

// GPT-2's pre-tokenisation: the split of text into "words" that BPE then encodes
// one at a time. OpenAI's encoder does it with the regular expression
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// which this file implements by hand over UTF-8:
// - a contraction ('s 't 're 've 'm 'll 'd, lower case, ASCII apostrophe) when a
//   piece starts with one;
// - else a run of letters, of numbers, or of other non-space symbols, each taking
//   one leading U+0020 space when the text has one right before it;
// - else a run of whitespace: the whole run at the end of the text, otherwise all
//   but its last character (which then leads the next word, or stands alone when
//   it is not U+0020 or the run is a single character).
//
// Character classes follow JavaScript's `\s` (the reference encoder is the npm
// package gpt-3-encoder) and Unicode's L (letter) and N (number) categories.
// ASCII, Latin-1 and the whitespace set are exact. Above U+00FF the categories
// come from a hand-written table of Unicode blocks (kRanges in the .cc), an
// approximation: combining marks inside Indic and other Brahmic and South-East
// Asian scripts count as letters (Unicode calls them marks, so GPT-2 splits
// there), and scattered symbols inside letter blocks count as letters; code
// points in no listed range count as letters. Checked once against node's
// \p{L}/\p{N}/\s: the class agrees on 97.4% of the assigned BMP code points and
// 98.8% of all assigned ones, and on every assigned code point of U+0080-U+06FF
// (Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic), U+2000-U+2BFF
// (punctuation, number forms, symbols), U+3000-U+9FFF (CJK, kana), Hangul
// syllables, U+FF00-U+FFFF (fullwidth forms) and U+1F000-U+1FBFF (emoji).
// Bytes that are not valid UTF-8 are single "other" symbols.

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace trident::data {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

CharClass ClassifyCodePoint(uint32_t code_point);

// Splits `text` into GPT-2 words; concatenating them gives back `text` exactly.
std::vector<absl::string_view> SplitGpt2Words(absl::string_view text);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_GPT2_PRETOKENIZER_H_
