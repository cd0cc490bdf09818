#include "training/checkpoint/json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace trident::checkpoint {

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

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code_point;
    uint32_t minimum;
    if ((lead & 0xE0) == 0xC0) {
      length = 2, code_point = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code_point = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code_point = lead & 0x07, minimum = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if (code_point < minimum || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

namespace {

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

// Recursive descent over the text; `position_` is the next unread byte.
class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    ASSIGN_OR_RETURN(JsonValue value, ParseValue(0));
    SkipWhitespace();
    if (position_ != text_.size()) return Error("end of document");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;

  absl::Status Error(absl::string_view expected) const {
    if (position_ >= text_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON: expected ", expected, " at byte ", position_, ", found the end"));
    }
    return absl::InvalidArgumentError(absl::StrFormat("JSON: expected %s at byte %d, found '%c'",
                                                      expected, position_, text_[position_]));
  }

  void SkipWhitespace() {
    while (position_ < text_.size() &&
           (text_[position_] == ' ' || text_[position_] == '\t' || text_[position_] == '\n' ||
            text_[position_] == '\r')) {
      ++position_;
    }
  }

  bool Consume(absl::string_view token) {
    if (text_.substr(position_, token.size()) != token) return false;
    position_ += token.size();
    return true;
  }

  absl::StatusOr<JsonValue> ParseValue(int depth) {
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON: nesting deeper than ", kMaxDepth, " at byte ", position_));
    }
    SkipWhitespace();
    if (position_ >= text_.size()) return Error("a value");
    const char next = text_[position_];
    if (next == '{') return ParseObject(depth);
    if (next == '[') return ParseArray(depth);
    if (next == '"') {
      ASSIGN_OR_RETURN(std::string value, ParseString());
      return JsonValue::String(std::move(value));
    }
    if (next == '-' || absl::ascii_isdigit(static_cast<unsigned char>(next))) return ParseNumber();
    if (Consume("true")) return JsonValue::Bool(true);
    if (Consume("false")) return JsonValue::Bool(false);
    if (Consume("null")) return JsonValue::Null();
    return Error("a value");
  }

  absl::StatusOr<JsonValue> ParseObject(int depth) {
    ++position_;  // '{'
    std::vector<JsonValue::Member> members;
    SkipWhitespace();
    if (Consume("}")) return JsonValue::Object(std::move(members));
    while (true) {
      SkipWhitespace();
      if (position_ >= text_.size() || text_[position_] != '"') return Error("'\"' (a key)");
      const size_t key_position = position_;
      ASSIGN_OR_RETURN(std::string key, ParseString());
      for (const JsonValue::Member& member : members) {
        if (member.first == key) {
          return absl::InvalidArgumentError(absl::StrCat("JSON: key \"", key,
                                                         "\" appears twice in one object (byte ",
                                                         key_position, ")"));
        }
      }
      SkipWhitespace();
      if (!Consume(":")) return Error("':'");
      ASSIGN_OR_RETURN(JsonValue value, ParseValue(depth + 1));
      members.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (Consume("}")) return JsonValue::Object(std::move(members));
      if (!Consume(",")) return Error("',' or '}'");
    }
  }

  absl::StatusOr<JsonValue> ParseArray(int depth) {
    ++position_;  // '['
    std::vector<JsonValue> items;
    SkipWhitespace();
    if (Consume("]")) return JsonValue::Array(std::move(items));
    while (true) {
      ASSIGN_OR_RETURN(JsonValue item, ParseValue(depth + 1));
      items.push_back(std::move(item));
      SkipWhitespace();
      if (Consume("]")) return JsonValue::Array(std::move(items));
      if (!Consume(",")) return Error("',' or ']'");
    }
  }

  absl::StatusOr<JsonValue> ParseNumber() {
    const size_t begin = position_;
    auto digits = [&]() {
      const size_t start = position_;
      while (position_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[position_]))) {
        ++position_;
      }
      return position_ - start;
    };
    Consume("-");
    if (Consume("0")) {
      // A leading zero stands alone: "01" is not JSON.
    } else if (digits() == 0) {
      return Error("a digit");
    }
    if (Consume(".") && digits() == 0) return Error("a digit after '.'");
    if (position_ < text_.size() && (text_[position_] == 'e' || text_[position_] == 'E')) {
      ++position_;
      if (!Consume("+")) Consume("-");
      if (digits() == 0) return Error("a digit in the exponent");
    }
    return JsonValue::Number(std::string(text_.substr(begin, position_ - begin)));
  }

  absl::StatusOr<uint32_t> ParseHex4() {
    if (text_.size() - position_ < 4) return Error("four hex digits");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[position_];
      uint32_t digit;
      if (c >= '0' && c <= '9') {
        digit = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        digit = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        digit = c - 'A' + 10;
      } else {
        return Error("a hex digit");
      }
      value = value * 16 + digit;
      ++position_;
    }
    return value;
  }

  absl::StatusOr<std::string> ParseString() {
    ++position_;  // '"'
    std::string value;
    while (true) {
      if (position_ >= text_.size()) return Error("'\"' (end of string)");
      const char c = text_[position_];
      if (c == '"') {
        ++position_;
        return value;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Error("an escaped control character");
      if (c != '\\') {
        value.push_back(c);
        ++position_;
        continue;
      }
      ++position_;
      if (position_ >= text_.size()) return Error("an escape character");
      const char escape = text_[position_++];
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          value.push_back(escape);
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
          ASSIGN_OR_RETURN(uint32_t code_point, ParseHex4());
          if (code_point >= 0xD800 && code_point <= 0xDBFF) {
            // A high surrogate must be followed by an escaped low surrogate.
            if (!Consume("\\u")) return Error("a low surrogate '\\uDC00'..'\\uDFFF'");
            ASSIGN_OR_RETURN(const uint32_t low, ParseHex4());
            if (low < 0xDC00 || low > 0xDFFF) return Error("a low surrogate");
            code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
          } else if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
            return Error("no lone low surrogate");
          }
          AppendUtf8(code_point, &value);
          break;
        }
        default:
          --position_;
          return Error("one of the escapes \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
      }
    }
  }

  absl::string_view text_;
  size_t position_ = 0;
};

}  // namespace

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("JSON: text is not valid UTF-8");
  return Parser(text).ParseDocument();
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

}  // namespace trident::checkpoint
