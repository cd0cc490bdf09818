#ifndef TRIDENT_CORE_IO_JSON_H_
#define TRIDENT_CORE_IO_JSON_H_

// A small JSON reader (RFC 8259) and string escaper for the JSON documents the
// project reads and writes: the safetensors header, the checkpoint's meta.json,
// and GPT-2's encoder.json.
//
// One scanner does all the reading (strings with every escape, \uXXXX surrogate
// pairs included; numbers; whitespace), behind three entry points:
//   - ParseJson builds a JsonValue tree. Numbers keep their literal text, so
//     64-bit integers round-trip exactly; object members keep their order; a
//     duplicate key is an error (the formats here never need one, and accepting
//     it would make a file ambiguous). The text must be valid UTF-8.
//   - ParseJsonObjectOfInts reads a flat {"key": integer, ...} object straight
//     into a vector, with no tree and no duplicate check, for large vocabularies
//     (encoder.json has 50257 members; the caller reports duplicates itself).
//   - ParseJsonString reads one string literal inside some other text.
// Every error is INVALID_ARGUMENT with a message "JSON: at byte N: ..." naming
// the offset and what was expected or wrong there (ParseJson's up-front UTF-8
// check says "JSON: text is not valid UTF-8").

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::io {

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

// Parses one JSON document (UTF-8; surrounding whitespace allowed).
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

// Parses `{"key": 123, ...}` (whitespace allowed, nothing after the object),
// keeping the members in file order. Values must be integers in the int64
// range. Duplicate keys are kept; the caller decides. The keys are not checked
// for UTF-8 beyond what their escapes produce.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text);

// Parses the JSON string literal that starts at text[*pos] (a '"'), returns its
// value as UTF-8 and moves *pos past the closing quote. On error *pos is
// unspecified.
absl::StatusOr<std::string> ParseJsonString(absl::string_view text, size_t* pos);

// Appends `value` as a quoted JSON string, escaping as serde_json does: quote,
// backslash, \b \f \n \r \t as two-character escapes, other control characters
// as \u00XX (lower-case hex), everything else (UTF-8 included) verbatim.
void AppendJsonString(absl::string_view value, std::string* out);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_JSON_H_
