#include "core/io/json.h"

#include <charconv>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/utf8.h"
#include "core/status_macros.h"

namespace trident::io {

JsonValue JsonValue::Bool(bool value) {
  JsonValue result(Kind::kBool);
  result.bool_value_ = value;
  return result;
}

JsonValue JsonValue::Number(std::string literal) {
  JsonValue result(Kind::kNumber);
  result.text_ = std::move(literal);
  return result;
}

JsonValue JsonValue::String(std::string value) {
  JsonValue result(Kind::kString);
  result.text_ = std::move(value);
  return result;
}

JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue result(Kind::kArray);
  result.items_ = std::move(items);
  return result;
}

JsonValue JsonValue::Object(std::vector<Member> members) {
  JsonValue result(Kind::kObject);
  result.members_ = std::move(members);
  return result;
}

const JsonValue* JsonValue::Find(absl::string_view key) const {
  for (const Member& member : members_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

namespace {

bool IsIntegerLiteral(absl::string_view literal) {
  return literal.find_first_of(".eE") == absl::string_view::npos;
}

}  // namespace

absl::StatusOr<int64_t> JsonValue::AsInt64(absl::string_view what) const {
  int64_t value = 0;
  if (kind_ != Kind::kNumber || !IsIntegerLiteral(text_) || !absl::SimpleAtoi(text_, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be an integer in the int64 range, got ",
        kind_ == Kind::kNumber ? text_ : std::string(JsonKindName(kind_))));
  }
  return value;
}

absl::StatusOr<uint64_t> JsonValue::AsUint64(absl::string_view what) const {
  uint64_t value = 0;
  if (kind_ != Kind::kNumber || !IsIntegerLiteral(text_) || text_[0] == '-' ||
      !absl::SimpleAtoi(text_, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be a non-negative integer in the uint64 range, got ",
        kind_ == Kind::kNumber ? text_ : std::string(JsonKindName(kind_))));
  }
  return value;
}

absl::string_view JsonKindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return "bool";
    case JsonValue::Kind::kNumber:
      return "number";
    case JsonValue::Kind::kString:
      return "string";
    case JsonValue::Kind::kArray:
      return "array";
    case JsonValue::Kind::kObject:
      return "object";
  }
  return "unknown";
}

namespace {

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The one JSON reader: a cursor over the text with the token-level parsers.
// Every entry point of this file drives it. `pos_` is the next unread byte.
class JsonScanner {
 public:
  JsonScanner(absl::string_view text, size_t pos) : text_(text), pos_(pos) {}

  size_t position() const { return pos_; }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  absl::Status ErrorAt(size_t pos, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON: at byte ", pos, ": ", what));
  }

  // "expected <what>, found <the next byte or the end>".
  absl::Status Expected(absl::string_view what) const {
    if (AtEnd()) return ErrorAt(pos_, absl::StrCat("expected ", what, ", found the end"));
    const char c = text_[pos_];
    if (absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return ErrorAt(pos_, absl::StrCat("expected ", what, ", found '", absl::string_view(&c, 1),
                                        "'"));
    }
    return ErrorAt(pos_, absl::StrFormat("expected %s, found byte 0x%02x", what,
                                         static_cast<unsigned char>(c)));
  }

  void SkipWhitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    if (AtEnd() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  bool ConsumeWord(absl::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Whitespace, then nothing else.
  absl::Status ExpectEnd(absl::string_view after) {
    SkipWhitespace();
    if (AtEnd()) return absl::OkStatus();
    return ErrorAt(pos_, absl::StrCat("unexpected content after the ", after));
  }

  // A string literal at the cursor, decoded to UTF-8.
  absl::StatusOr<std::string> ParseString() {
    if (!Consume('"')) return Expected("'\"' starting a string");
    const size_t start = pos_ - 1;
    std::string value;
    while (true) {
      // Plain characters are copied a run at a time: almost every byte of
      // encoder.json is one, and one append beats a push_back per byte.
      const size_t run_start = pos_;
      while (pos_ < text_.size() && IsPlain(text_[pos_])) ++pos_;
      value.append(text_.data() + run_start, pos_ - run_start);
      if (AtEnd()) return ErrorAt(start, "unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return value;
      }
      if (c != '\\') {
        return ErrorAt(pos_, absl::StrFormat("control character 0x%02x must be escaped",
                                             static_cast<unsigned char>(c)));
      }
      RETURN_IF_ERROR(ParseEscape(&value));
    }
  }

  // A number literal (RFC 8259 grammar) at the cursor, as written. When
  // `is_integer` is given, it says whether the literal lacks a fraction and an
  // exponent.
  absl::StatusOr<absl::string_view> ParseNumberLiteral(bool* is_integer = nullptr) {
    const size_t start = pos_;
    Consume('-');
    if (AtEnd() || !absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) {
      return Expected("a digit");
    }
    if (Consume('0')) {
      if (!AtEnd() && absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) {
        return ErrorAt(start, "a number must not have leading zeros");
      }
    } else {
      SkipDigits();
    }
    bool integer = true;
    if (Consume('.')) {
      integer = false;
      if (SkipDigits() == 0) return Expected("a digit after '.'");
    }
    if (Consume('e') || Consume('E')) {
      integer = false;
      if (!Consume('+')) Consume('-');
      if (SkipDigits() == 0) return Expected("a digit in the exponent");
    }
    if (is_integer != nullptr) *is_integer = integer;
    return text_.substr(start, pos_ - start);
  }

  // A number literal that must be an integer in the int64 range.
  absl::StatusOr<int64_t> ParseInt64() {
    const size_t start = pos_;
    if (AtEnd() || (Peek() != '-' && !absl::ascii_isdigit(static_cast<unsigned char>(Peek())))) {
      return Expected("an integer value");
    }
    bool is_integer = false;
    ASSIGN_OR_RETURN(const absl::string_view literal, ParseNumberLiteral(&is_integer));
    if (!is_integer) return ErrorAt(start, "expected an integer, found a fraction or exponent");
    // The grammar is already checked, so from_chars (no locale, no whitespace,
    // no '+') converts exactly; it only fails on overflow.
    int64_t value = 0;
    const std::from_chars_result result =
        std::from_chars(literal.data(), literal.data() + literal.size(), value);
    if (result.ec != std::errc() || result.ptr != literal.data() + literal.size()) {
      return ErrorAt(start, absl::StrCat("integer ", literal, " is out of the 64-bit range"));
    }
    return value;
  }

  // `{ "key": value, ... }` at the cursor. For each member, `on_member(key,
  // key_position)` is called with the cursor before the value, which it must
  // parse. Whitespace, colons, commas and braces are handled here.
  template <typename OnMember>
  absl::Status ParseObject(OnMember on_member) {
    if (!Consume('{')) return Expected("'{'");
    SkipWhitespace();
    if (Consume('}')) return absl::OkStatus();
    while (true) {
      SkipWhitespace();
      const size_t key_position = pos_;
      ASSIGN_OR_RETURN(std::string key, ParseString());
      SkipWhitespace();
      if (!Consume(':')) return Expected("':' after an object key");
      SkipWhitespace();
      RETURN_IF_ERROR(on_member(std::move(key), key_position));
      SkipWhitespace();
      if (Consume('}')) return absl::OkStatus();
      if (!Consume(',')) return Expected("',' or '}' after an object member");
    }
  }

 private:
  static bool IsPlain(char c) {
    return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20;
  }

  size_t SkipDigits() {
    const size_t start = pos_;
    while (!AtEnd() && absl::ascii_isdigit(static_cast<unsigned char>(Peek()))) ++pos_;
    return pos_ - start;
  }

  // The 4 hex digits of a \u escape at the cursor.
  absl::StatusOr<uint32_t> ParseHex4() {
    if (text_.size() - pos_ < 4) return ErrorAt(pos_, "\\u needs 4 hex digits");
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i) {
      const int digit = HexDigitValue(text_[pos_ + i]);
      if (digit < 0) {
        return ErrorAt(pos_ + i, absl::StrCat("'", absl::CHexEscape(text_.substr(pos_ + i, 1)),
                                              "' is not a hex digit of a \\u escape"));
      }
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    pos_ += 4;
    return value;
  }

  // The escape at the cursor (a backslash), appended to `value` as UTF-8.
  absl::Status ParseEscape(std::string* value) {
    const size_t escape_position = pos_;
    if (text_.size() - pos_ < 2) return ErrorAt(pos_, "unterminated escape");
    const char escape = text_[pos_ + 1];
    pos_ += 2;
    switch (escape) {
      case '"':
      case '\\':
      case '/':
        value->push_back(escape);
        return absl::OkStatus();
      case 'b':
        value->push_back('\b');
        return absl::OkStatus();
      case 'f':
        value->push_back('\f');
        return absl::OkStatus();
      case 'n':
        value->push_back('\n');
        return absl::OkStatus();
      case 'r':
        value->push_back('\r');
        return absl::OkStatus();
      case 't':
        value->push_back('\t');
        return absl::OkStatus();
      case 'u':
        break;
      default:
        return ErrorAt(escape_position,
                       absl::StrCat("unknown escape '\\",
                                    absl::CHexEscape(absl::string_view(&escape, 1)), "'"));
    }
    ASSIGN_OR_RETURN(uint32_t code_point, ParseHex4());
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
      return ErrorAt(escape_position, "low surrogate without a preceding high surrogate");
    }
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      // A UTF-16 pair: the high half must be followed by \u and the low half.
      const size_t low_position = pos_;
      if (!ConsumeWord("\\u")) {
        return ErrorAt(escape_position, "high surrogate not followed by a \\u low surrogate");
      }
      ASSIGN_OR_RETURN(const uint32_t low, ParseHex4());
      if (low < 0xDC00 || low > 0xDFFF) {
        return ErrorAt(low_position, "high surrogate not followed by a low surrogate");
      }
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(code_point, value);
    return absl::OkStatus();
  }

  absl::string_view text_;
  size_t pos_;
};

// Builds a JsonValue tree with the scanner.
class TreeParser {
 public:
  explicit TreeParser(absl::string_view text) : scanner_(text, 0) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    ASSIGN_OR_RETURN(JsonValue value, ParseValue(0));
    RETURN_IF_ERROR(scanner_.ExpectEnd("document"));
    return value;
  }

 private:
  // Deep enough for any format here; bounds the recursion on hostile input.
  static constexpr int kMaxDepth = 64;

  absl::StatusOr<JsonValue> ParseValue(int depth) {
    if (depth > kMaxDepth) {
      return scanner_.ErrorAt(scanner_.position(),
                              absl::StrCat("nesting deeper than ", kMaxDepth, " levels"));
    }
    scanner_.SkipWhitespace();
    if (scanner_.AtEnd()) return scanner_.Expected("a value");
    const char next = scanner_.Peek();
    if (next == '{') return ParseObject(depth);
    if (next == '[') return ParseArray(depth);
    if (next == '"') {
      ASSIGN_OR_RETURN(std::string value, scanner_.ParseString());
      return JsonValue::String(std::move(value));
    }
    if (next == '-' || absl::ascii_isdigit(static_cast<unsigned char>(next))) {
      ASSIGN_OR_RETURN(const absl::string_view literal, scanner_.ParseNumberLiteral());
      return JsonValue::Number(std::string(literal));
    }
    if (scanner_.ConsumeWord("true")) return JsonValue::Bool(true);
    if (scanner_.ConsumeWord("false")) return JsonValue::Bool(false);
    if (scanner_.ConsumeWord("null")) return JsonValue::Null();
    return scanner_.Expected("a value");
  }

  absl::StatusOr<JsonValue> ParseObject(int depth) {
    std::vector<JsonValue::Member> members;
    RETURN_IF_ERROR(scanner_.ParseObject([&](std::string key, size_t key_position) -> absl::Status {
      for (const JsonValue::Member& member : members) {
        if (member.first == key) {
          return scanner_.ErrorAt(key_position,
                                  absl::StrCat("key \"", key, "\" appears twice in one object"));
        }
      }
      ASSIGN_OR_RETURN(JsonValue value, ParseValue(depth + 1));
      members.emplace_back(std::move(key), std::move(value));
      return absl::OkStatus();
    }));
    return JsonValue::Object(std::move(members));
  }

  absl::StatusOr<JsonValue> ParseArray(int depth) {
    scanner_.Consume('[');
    std::vector<JsonValue> items;
    scanner_.SkipWhitespace();
    if (scanner_.Consume(']')) return JsonValue::Array(std::move(items));
    while (true) {
      ASSIGN_OR_RETURN(JsonValue item, ParseValue(depth + 1));
      items.push_back(std::move(item));
      scanner_.SkipWhitespace();
      if (scanner_.Consume(']')) return JsonValue::Array(std::move(items));
      if (!scanner_.Consume(',')) return scanner_.Expected("',' or ']' after an array item");
    }
  }

  JsonScanner scanner_;
};

}  // namespace

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("JSON: text is not valid UTF-8");
  return TreeParser(text).ParseDocument();
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text) {
  std::vector<std::pair<std::string, int64_t>> members;
  JsonScanner scanner(text, 0);
  scanner.SkipWhitespace();
  RETURN_IF_ERROR(scanner.ParseObject([&](std::string key, size_t) -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t value, scanner.ParseInt64());
    members.emplace_back(std::move(key), value);
    return absl::OkStatus();
  }));
  RETURN_IF_ERROR(scanner.ExpectEnd("object"));
  return members;
}

absl::StatusOr<std::string> ParseJsonString(absl::string_view text, size_t* pos) {
  JsonScanner scanner(text, *pos);
  ASSIGN_OR_RETURN(std::string value, scanner.ParseString());
  *pos = scanner.position();
  return value;
}

void AppendJsonString(absl::string_view value, std::string* out) {
  out->push_back('"');
  for (const char c : value) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace trident::io
