#include "core/io/json_parse.h"

#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace trident::io {
namespace {

using ::nlohmann::ordered_json;

absl::Status ParseError(const nlohmann::json::parse_error& error) {
  // what() is "[json.exception.parse_error.101] parse error at line 1, column
  // 8: syntax error ..."; keep the part after the position.
  absl::string_view what = error.what();
  const size_t colon = what.find(": ");
  if (colon != absl::string_view::npos) what.remove_prefix(colon + 2);
  return absl::InvalidArgumentError(absl::StrCat("JSON: at byte ", error.byte, ": ", what));
}

// Collects the members of a flat object of integers; anything else stops the
// parse with a message.
class IntObjectSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::vector<std::pair<std::string, int64_t>> members;
  std::optional<std::string> error;

  bool null() override { return Wrong("null"); }
  bool boolean(bool) override { return Wrong("a boolean"); }
  bool number_integer(number_integer_t value) override { return Value(value); }
  bool number_unsigned(number_unsigned_t value) override {
    if (value > static_cast<number_unsigned_t>(INT64_MAX)) return Wrong("an integer beyond int64");
    return Value(static_cast<int64_t>(value));
  }
  bool number_float(number_float_t, const string_t& text) override {
    return Wrong(absl::StrCat("the number ", text));
  }
  bool string(string_t&) override { return Wrong("a string"); }
  bool binary(binary_t&) override { return Wrong("binary data"); }
  bool start_object(std::size_t) override {
    if (depth_++ != 0) return Wrong("an object");
    return true;
  }
  bool key(string_t& value) override {
    key_ = std::move(value);
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return Wrong("an array"); }
  bool end_array() override { return false; }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    absl::string_view what = ex.what();
    const size_t colon = what.find(": ");
    if (colon != absl::string_view::npos) what.remove_prefix(colon + 2);
    error = absl::StrCat("at byte ", position, ": ", what);
    return false;
  }

 private:
  bool Value(int64_t value) {
    if (depth_ != 1) return Wrong("a number");
    members.emplace_back(std::move(key_), value);
    return true;
  }
  bool Wrong(absl::string_view what) {
    error = depth_ == 0 ? absl::StrCat("the document is ", what, ", expected an object")
                        : absl::StrCat("the value of \"", key_, "\" is ", what,
                                       ", expected an integer");
    return false;
  }

  int depth_ = 0;
  std::string key_;
};

}  // namespace

absl::StatusOr<ordered_json> ParseJsonDocument(absl::string_view text) {
  // One set of keys per open object, to refuse repeated keys.
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  const ordered_json::parser_callback_t callback =
      [&](int, ordered_json::parse_event_t event, ordered_json& parsed) {
        switch (event) {
          case ordered_json::parse_event_t::object_start:
            open_objects.emplace_back();
            break;
          case ordered_json::parse_event_t::object_end:
            open_objects.pop_back();
            break;
          case ordered_json::parse_event_t::key:
            if (!open_objects.back().insert(parsed.get<std::string>()).second && !duplicate) {
              duplicate = parsed.get<std::string>();
            }
            break;
          default:
            break;
        }
        return true;
      };
  try {
    ordered_json value = ordered_json::parse(text.begin(), text.end(), callback);
    if (duplicate.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("JSON: key \"", *duplicate, "\" appears twice in one object"));
    }
    return value;
  } catch (const nlohmann::json::parse_error& error) {
    return ParseError(error);
  }
}

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text) {
  IntObjectSax sax;
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok || sax.error.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON: ", sax.error.value_or("not a flat object of integers")));
  }
  return std::move(sax.members);
}

std::string JsonTypeName(const ordered_json& value) { return value.type_name(); }

}  // namespace trident::io
