#include "training/data/gpt2_pretokenizer.h"

#include <algorithm>
#include <array>

namespace trident::data {
namespace {

struct CodePointRange {
  uint32_t first;
  uint32_t last;
  CharClass char_class;
};

constexpr CharClass L = CharClass::kLetter;
constexpr CharClass N = CharClass::kNumber;
constexpr CharClass O = CharClass::kOther;

// Classes of code points from U+0080 up, by Unicode block; a code point in no
// range is a letter (most unlisted blocks are scripts). Whitespace is decided
// before this table. Latin-1 is exact; later blocks are summarised (see the
// header for what that approximates).
// Several ranges per line keep the table readable.
// clang-format off
constexpr CodePointRange kRanges[] = {
    // Latin-1 Supplement, exact.
    {0x0080, 0x00A9, O}, {0x00AA, 0x00AA, L}, {0x00AB, 0x00B1, O}, {0x00B2, 0x00B3, N},
    {0x00B4, 0x00B4, O}, {0x00B5, 0x00B5, L}, {0x00B6, 0x00B8, O}, {0x00B9, 0x00B9, N},
    {0x00BA, 0x00BA, L}, {0x00BB, 0x00BB, O}, {0x00BC, 0x00BE, N}, {0x00BF, 0x00BF, O},
    {0x00D7, 0x00D7, O}, {0x00F7, 0x00F7, O},
    // Spacing modifier letters: symbols among them.
    {0x02C2, 0x02C5, O}, {0x02D2, 0x02DF, O}, {0x02E5, 0x02EB, O}, {0x02ED, 0x02ED, O},
    {0x02EF, 0x02FF, O},
    // Combining diacritical marks.
    {0x0300, 0x036F, O},
    // Greek: the few punctuation and sign characters.
    {0x0375, 0x0375, O}, {0x037E, 0x037E, O}, {0x0384, 0x0385, O}, {0x0387, 0x0387, O},
    {0x03F6, 0x03F6, O},
    // Cyrillic: the thousands sign and combining marks.
    {0x0482, 0x0489, O},
    // Armenian punctuation.
    {0x055A, 0x055F, O}, {0x0589, 0x058F, O},
    // Hebrew points and punctuation.
    {0x0591, 0x05CF, O}, {0x05F3, 0x05FF, O},
    // Arabic: signs, punctuation, marks and the two digit sets.
    {0x0600, 0x061F, O}, {0x064B, 0x065F, O}, {0x0660, 0x0669, N}, {0x066A, 0x066D, O},
    {0x0670, 0x0670, O}, {0x06D4, 0x06D4, O}, {0x06D6, 0x06E4, O}, {0x06E7, 0x06ED, O},
    {0x06F0, 0x06F9, N}, {0x06FD, 0x06FE, O},
    // Digits of the Brahmic scripts (Devanagari ... Sinhala) and Thai, Lao.
    {0x0966, 0x096F, N}, {0x09E6, 0x09EF, N}, {0x0A66, 0x0A6F, N}, {0x0AE6, 0x0AEF, N},
    {0x0B66, 0x0B6F, N}, {0x0BE6, 0x0BF2, N}, {0x0C66, 0x0C6F, N}, {0x0CE6, 0x0CEF, N},
    {0x0D66, 0x0D78, N}, {0x0DE6, 0x0DEF, N}, {0x0E3F, 0x0E3F, O}, {0x0E50, 0x0E59, N},
    {0x0ED0, 0x0ED9, N}, {0x0F20, 0x0F33, N}, {0x1040, 0x1049, N}, {0x17E0, 0x17E9, N},
    {0x1810, 0x1819, N},
    // Combining marks of several blocks.
    {0x1AB0, 0x1AFF, O}, {0x1DC0, 0x1DFF, O},
    // Greek Extended: the spacing accents.
    {0x1FBD, 0x1FBD, O}, {0x1FBF, 0x1FC1, O}, {0x1FCD, 0x1FCF, O}, {0x1FDD, 0x1FDF, O},
    {0x1FED, 0x1FEF, O}, {0x1FFD, 0x1FFE, O},
    // General Punctuation.
    {0x2000, 0x206F, O},
    // Superscripts and subscripts.
    {0x2070, 0x2070, N}, {0x2072, 0x2073, O}, {0x2074, 0x2079, N}, {0x207A, 0x207E, O},
    {0x2080, 0x2089, N}, {0x208A, 0x208F, O},
    // Currency symbols, combining marks for symbols.
    {0x20A0, 0x20FF, O},
    // Letterlike symbols: the symbols between the letters.
    {0x2100, 0x2101, O}, {0x2103, 0x2106, O}, {0x2108, 0x2109, O}, {0x2114, 0x2114, O},
    {0x2116, 0x2118, O}, {0x211E, 0x2123, O}, {0x2125, 0x2125, O}, {0x2127, 0x2127, O},
    {0x2129, 0x2129, O}, {0x212E, 0x212E, O}, {0x213A, 0x213B, O}, {0x2140, 0x2144, O},
    {0x214A, 0x214D, O}, {0x214F, 0x214F, O},
    // Number forms (fractions, Roman numerals).
    {0x2150, 0x2182, N}, {0x2185, 0x2189, N}, {0x218A, 0x218F, O},
    // Arrows, mathematical operators, technical, control pictures, OCR.
    {0x2190, 0x245F, O},
    // Enclosed alphanumerics: circled numbers are numbers, enclosed letters symbols.
    {0x2460, 0x249B, N}, {0x249C, 0x24E9, O}, {0x24EA, 0x24FF, N},
    // Box drawing, blocks, shapes, miscellaneous symbols, dingbats, arrows.
    {0x2500, 0x2775, O}, {0x2776, 0x2793, N}, {0x2794, 0x2BFF, O},
    // Coptic symbols; Cyrillic combining; supplemental punctuation; CJK radicals,
    // Kangxi radicals, ideographic description characters.
    {0x2CE5, 0x2CEA, O}, {0x2CF9, 0x2CFC, O}, {0x2CFD, 0x2CFD, N}, {0x2CFE, 0x2CFF, O},
    {0x2DE0, 0x2FFF, O},
    // CJK symbols and punctuation.
    {0x3001, 0x3004, O}, {0x3007, 0x3007, N}, {0x3008, 0x3020, O}, {0x3021, 0x3029, N},
    {0x302A, 0x3030, O}, {0x3036, 0x3037, O}, {0x3038, 0x303A, N}, {0x303D, 0x303F, O},
    // Kana: combining and punctuation marks.
    {0x3099, 0x309C, O}, {0x30A0, 0x30A0, O}, {0x30FB, 0x30FB, O},
    // Kanbun, CJK strokes, enclosed CJK letters and months, CJK compatibility.
    {0x3190, 0x3191, O}, {0x3192, 0x3195, N}, {0x3196, 0x319F, O}, {0x31C0, 0x31EF, O},
    {0x3200, 0x321F, O}, {0x3220, 0x3229, N}, {0x322A, 0x3247, O}, {0x3248, 0x324F, N},
    {0x3250, 0x3250, O}, {0x3251, 0x325F, N}, {0x3260, 0x327F, O}, {0x3280, 0x3289, N},
    {0x328A, 0x32B0, O}, {0x32B1, 0x32BF, N}, {0x32C0, 0x33FF, O},
    // Yijing hexagrams.
    {0x4DC0, 0x4DFF, O},
    // Yi radicals.
    {0xA490, 0xA4CF, O},
    // Surrogates (never valid UTF-8) and private use.
    {0xD800, 0xF8FF, O},
    // Variation selectors, vertical forms, combining half marks, CJK compatibility
    // forms, small form variants.
    {0xFB29, 0xFB29, O}, {0xFD3E, 0xFD4F, O}, {0xFDFC, 0xFE6F, O},
    // Halfwidth and fullwidth forms.
    {0xFF01, 0xFF0F, O}, {0xFF10, 0xFF19, N}, {0xFF1A, 0xFF20, O}, {0xFF3B, 0xFF40, O},
    {0xFF5B, 0xFF65, O}, {0xFFE0, 0xFFFF, O},
    // Aegean and ancient Greek numbers.
    {0x10100, 0x1013F, N}, {0x10140, 0x1018F, N},
    // Cuneiform numbers.
    {0x12400, 0x1246F, N},
    // Legacy computing symbols, Znamenny notation, musical symbols.
    {0x1CC00, 0x1CFFF, O}, {0x1D000, 0x1D24F, O},
    // Kaktovik and Mayan numerals, Tai Xuan Jing symbols, counting rods.
    {0x1D2C0, 0x1D2FF, N}, {0x1D300, 0x1D35F, O}, {0x1D360, 0x1D37F, N},
    // Mathematical alphanumeric symbols: the operators among them, and the digits.
    {0x1D6C1, 0x1D6C1, O}, {0x1D6DB, 0x1D6DB, O}, {0x1D6FB, 0x1D6FB, O},
    {0x1D715, 0x1D715, O}, {0x1D735, 0x1D735, O}, {0x1D74F, 0x1D74F, O},
    {0x1D76F, 0x1D76F, O}, {0x1D789, 0x1D789, O}, {0x1D7A9, 0x1D7A9, O},
    {0x1D7C3, 0x1D7C3, O}, {0x1D7CC, 0x1D7CD, O}, {0x1D7CE, 0x1D7FF, N},
    // Sutton SignWriting.
    {0x1D800, 0x1DAAF, O},
    // Mahjong, dominos, cards, enclosed alphanumerics (digits), emoji, symbols.
    {0x1F000, 0x1F0FF, O}, {0x1F100, 0x1F10C, N}, {0x1F10D, 0x1FBEF, O},
    {0x1FBF0, 0x1FBF9, N}, {0x1FBFA, 0x1FFFF, O},
    // Tags, variation selectors supplement, private use planes.
    {0xE0000, 0x10FFFF, O},
};
// clang-format on

constexpr bool RangesSortedAndDisjoint() {
  for (size_t i = 0; i < std::size(kRanges); ++i) {
    if (kRanges[i].first > kRanges[i].last) return false;
    if (i > 0 && kRanges[i - 1].last >= kRanges[i].first) return false;
  }
  return true;
}
static_assert(RangesSortedAndDisjoint(), "kRanges must be sorted and non-overlapping");

bool IsJavaScriptSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000 || c == 0xFEFF;
}

// One decoded character: its code point (or the lone byte when the UTF-8 is
// invalid, flagged) and its length in bytes.
struct Char {
  CharClass char_class;
  size_t length;
};

// Decodes the character at text[pos] (pos < text.size()).
Char DecodeAt(absl::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return {ClassifyCodePoint(lead), 1};
  size_t length;
  uint32_t code_point;
  uint32_t min_value;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, code_point = lead & 0x1F, min_value = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, code_point = lead & 0x0F, min_value = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, code_point = lead & 0x07, min_value = 0x10000;
  } else {
    return {CharClass::kOther, 1};
  }
  if (pos + length > text.size()) return {CharClass::kOther, 1};
  for (size_t i = 1; i < length; ++i) {
    if ((byte(pos + i) & 0xC0) != 0x80) return {CharClass::kOther, 1};
    code_point = (code_point << 6) | (byte(pos + i) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid UTF-8.
  if (code_point < min_value || code_point > 0x10FFFF ||
      (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    return {CharClass::kOther, 1};
  }
  return {ClassifyCodePoint(code_point), length};
}

bool StartsWithContraction(absl::string_view rest, size_t* length) {
  static constexpr absl::string_view kContractions[] = {"'s", "'t",  "'re", "'ve",
                                                        "'m", "'ll", "'d"};
  for (absl::string_view contraction : kContractions) {
    if (rest.substr(0, contraction.size()) == contraction) {
      *length = contraction.size();
      return true;
    }
  }
  return false;
}

// End of the run of characters of class `run_class` starting at `pos`.
size_t RunEnd(absl::string_view text, size_t pos, CharClass run_class) {
  while (pos < text.size()) {
    const Char c = DecodeAt(text, pos);
    if (c.char_class != run_class) break;
    pos += c.length;
  }
  return pos;
}

}  // namespace

CharClass ClassifyCodePoint(uint32_t code_point) {
  if (IsJavaScriptSpace(code_point)) return CharClass::kSpace;
  if (code_point < 0x80) {
    if ((code_point | 0x20) >= 'a' && (code_point | 0x20) <= 'z') return CharClass::kLetter;
    if (code_point >= '0' && code_point <= '9') return CharClass::kNumber;
    return CharClass::kOther;
  }
  const auto* it = std::upper_bound(
      std::begin(kRanges), std::end(kRanges), code_point,
      [](uint32_t value, const CodePointRange& range) { return value < range.first; });
  if (it != std::begin(kRanges)) {
    const CodePointRange& range = *(it - 1);
    if (code_point <= range.last) return range.char_class;
  }
  return CharClass::kLetter;
}

std::vector<absl::string_view> SplitGpt2Words(absl::string_view text) {
  std::vector<absl::string_view> words;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    size_t contraction_length;
    if (text[pos] == '\'' && StartsWithContraction(text.substr(pos), &contraction_length)) {
      words.push_back(text.substr(pos, contraction_length));
      pos += contraction_length;
      continue;
    }
    const Char first = DecodeAt(text, pos);
    if (first.char_class != CharClass::kSpace) {
      pos = RunEnd(text, pos, first.char_class);
      words.push_back(text.substr(start, pos - start));
      continue;
    }
    // A U+0020 space right before a non-space character joins that character's run.
    if (text[pos] == ' ' && pos + 1 < text.size()) {
      const Char next = DecodeAt(text, pos + 1);
      if (next.char_class != CharClass::kSpace) {
        pos = RunEnd(text, pos + 1, next.char_class);
        words.push_back(text.substr(start, pos - start));
        continue;
      }
    }
    // A whitespace run: all of it at the end of the text; otherwise all but its
    // last character, unless it is a single character.
    size_t last_char_start = pos;
    while (pos < text.size()) {
      const Char c = DecodeAt(text, pos);
      if (c.char_class != CharClass::kSpace) break;
      last_char_start = pos;
      pos += c.length;
    }
    if (pos < text.size() && last_char_start > start) pos = last_char_start;
    words.push_back(text.substr(start, pos - start));
  }
  return words;
}

}  // namespace trident::data
