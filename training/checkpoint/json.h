#ifndef TRIDENT_TRAINING_CHECKPOINT_JSON_H_
#define TRIDENT_TRAINING_CHECKPOINT_JSON_H_

// A small JSON reader and string escaper for the two JSON documents this
// package handles: the safetensors header and the checkpoint's meta.json.
// Numbers keep their literal text, so 64-bit integers round-trip exactly.
// Object members keep their order; a duplicate key is an error (the formats
// here never need one, and accepting it would make a file ambiguous).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::checkpoint {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  static JsonValue Null() { return JsonValue(Kind::kNull); }
  static JsonValue Bool(bool value);
  static JsonValue Number(std::string literal);
  static JsonValue String(std::string value);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<Member> members);

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }

  // Accessors; each is only meaningful for its kind (empty otherwise).
  bool bool_value() const { return bool_value_; }
  const std::string& number_literal() const { return text_; }
  const std::string& string_value() const { return text_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // The member named `key` of an object; nullptr when absent or not an object.
  const JsonValue* Find(absl::string_view key) const;

  // An integer number that fits the type; an error naming `what` otherwise
  // (a fraction, an exponent, out of range, or not a number at all).
  absl::StatusOr<int64_t> AsInt64(absl::string_view what) const;
  absl::StatusOr<uint64_t> AsUint64(absl::string_view what) const;

 private:
  explicit JsonValue(Kind kind) : kind_(kind) {}

  Kind kind_ = Kind::kNull;
  bool bool_value_ = false;
  std::string text_;  // number literal or string value
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

// "null", "bool", "number", "string", "array", "object".
absl::string_view JsonKindName(JsonValue::Kind kind);

// Parses one JSON document (RFC 8259; UTF-8; surrounding whitespace allowed).
// Errors name the byte offset and what was expected there.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

// Appends `value` as a quoted JSON string, escaping as serde_json does: quote,
// backslash, \b \f \n \r \t as two-character escapes, other control characters
// as \u00XX (lower-case hex), everything else (UTF-8 included) verbatim.
void AppendJsonString(absl::string_view value, std::string* out);

// Whether `text` is well-formed UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(absl::string_view text);

}  // namespace trident::checkpoint

#endif  // TRIDENT_TRAINING_CHECKPOINT_JSON_H_
