#include "training/data/json_strings.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace trident::data {
namespace {

absl::Status SyntaxError(size_t pos, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("JSON: at byte ", pos, ": ", what));
}

void SkipWhitespace(absl::string_view text, size_t* pos) {
  while (*pos < text.size() &&
         (text[*pos] == ' ' || text[*pos] == '\t' || text[*pos] == '\n' || text[*pos] == '\r')) {
    ++*pos;
  }
}

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the 4 hex digits of a \u escape starting at text[pos].
absl::StatusOr<uint32_t> ParseHex4(absl::string_view text, size_t pos) {
  if (pos + 4 > text.size()) return SyntaxError(pos, "\\u needs 4 hex digits");
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    const int digit = HexDigitValue(text[pos + i]);
    if (digit < 0) {
      return SyntaxError(pos + i, absl::StrCat("'", text.substr(pos + i, 1),
                                               "' is not a hex digit of a \\u escape"));
    }
    value = value * 16 + static_cast<uint32_t>(digit);
  }
  return value;
}

absl::StatusOr<int64_t> ParseInteger(absl::string_view text, size_t* pos) {
  const size_t start = *pos;
  bool negative = false;
  if (*pos < text.size() && text[*pos] == '-') {
    negative = true;
    ++*pos;
  }
  const size_t digits_start = *pos;
  // Accumulate as a negative number so INT64_MIN fits.
  int64_t value = 0;
  while (*pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9') {
    const int digit = text[*pos] - '0';
    if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) {
      return SyntaxError(start, "integer out of the 64-bit range");
    }
    value = value * 10 - digit;
    ++*pos;
  }
  const size_t num_digits = *pos - digits_start;
  if (num_digits == 0) return SyntaxError(start, "expected an integer value");
  if (num_digits > 1 && text[digits_start] == '0') {
    return SyntaxError(start, "an integer must not have leading zeros");
  }
  if (*pos < text.size() && (text[*pos] == '.' || text[*pos] == 'e' || text[*pos] == 'E')) {
    return SyntaxError(start, "expected an integer, found a fraction or exponent");
  }
  if (!negative) {
    if (value == std::numeric_limits<int64_t>::min()) {
      return SyntaxError(start, "integer out of the 64-bit range");
    }
    value = -value;
  }
  return value;
}

}  // namespace

void AppendUtf8(uint32_t code_point, std::string* out) {
  if (code_point < 0x80) {
    out->push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

absl::StatusOr<std::string> ParseJsonString(absl::string_view text, size_t* pos) {
  if (*pos >= text.size() || text[*pos] != '"') {
    return SyntaxError(*pos, "expected '\"' starting a string");
  }
  const size_t start = *pos;
  ++*pos;
  std::string value;
  while (true) {
    if (*pos >= text.size()) return SyntaxError(start, "unterminated string");
    const char c = text[*pos];
    if (c == '"') {
      ++*pos;
      return value;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      return SyntaxError(*pos, absl::StrFormat("control character 0x%02x must be escaped", c));
    }
    if (c != '\\') {
      value.push_back(c);
      ++*pos;
      continue;
    }
    if (*pos + 1 >= text.size()) return SyntaxError(*pos, "unterminated escape");
    const char escape = text[*pos + 1];
    *pos += 2;
    switch (escape) {
      case '"':
        value.push_back('"');
        break;
      case '\\':
        value.push_back('\\');
        break;
      case '/':
        value.push_back('/');
        break;
      case 'b':
        value.push_back('\b');
        break;
      case 'f':
        value.push_back('\f');
        break;
      case 'n':
        value.push_back('\n');
        break;
      case 'r':
        value.push_back('\r');
        break;
      case 't':
        value.push_back('\t');
        break;
      case 'u': {
        const size_t escape_pos = *pos - 2;
        ASSIGN_OR_RETURN(uint32_t code_point, ParseHex4(text, *pos));
        *pos += 4;
        if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
          return SyntaxError(escape_pos, "low surrogate without a preceding high surrogate");
        }
        if (code_point >= 0xD800 && code_point <= 0xDBFF) {
          // UTF-16 pair: the high half must be followed by \u and the low half.
          if (*pos + 2 > text.size() || text[*pos] != '\\' || text[*pos + 1] != 'u') {
            return SyntaxError(escape_pos, "high surrogate not followed by a \\u low surrogate");
          }
          ASSIGN_OR_RETURN(const uint32_t low, ParseHex4(text, *pos + 2));
          if (low < 0xDC00 || low > 0xDFFF) {
            return SyntaxError(*pos, "high surrogate not followed by a low surrogate");
          }
          *pos += 6;
          code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
        }
        AppendUtf8(code_point, &value);
        break;
      }
      default:
        return SyntaxError(*pos - 2,
                           absl::StrCat("unknown escape '\\", std::string(1, escape), "'"));
    }
  }
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text) {
  std::vector<std::pair<std::string, int64_t>> members;
  size_t pos = 0;
  SkipWhitespace(text, &pos);
  if (pos >= text.size() || text[pos] != '{') return SyntaxError(pos, "expected '{'");
  ++pos;
  SkipWhitespace(text, &pos);
  if (pos < text.size() && text[pos] == '}') {
    ++pos;
  } else {
    while (true) {
      SkipWhitespace(text, &pos);
      ASSIGN_OR_RETURN(std::string key, ParseJsonString(text, &pos));
      SkipWhitespace(text, &pos);
      if (pos >= text.size() || text[pos] != ':') {
        return SyntaxError(pos, "expected ':' after an object key");
      }
      ++pos;
      SkipWhitespace(text, &pos);
      ASSIGN_OR_RETURN(const int64_t value, ParseInteger(text, &pos));
      members.emplace_back(std::move(key), value);
      SkipWhitespace(text, &pos);
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == '}') {
        ++pos;
        break;
      }
      return SyntaxError(pos, "expected ',' or '}' after an object member");
    }
  }
  SkipWhitespace(text, &pos);
  if (pos != text.size()) return SyntaxError(pos, "unexpected content after the object");
  return members;
}

}  // namespace trident::data
