#ifndef TRIDENT_CORE_IO_JSON_PARSE_H_
#define TRIDENT_CORE_IO_JSON_PARSE_H_

// JSON parsing through nlohmann::json with the project's error convention:
// a Status instead of an exception. The formats read here (safetensors
// headers, GPT-2's encoder.json) must not be ambiguous, so a key repeated in
// one object is an error rather than "last one wins".
//
// Every error is INVALID_ARGUMENT with a message starting "JSON: " that says
// what is wrong and, for syntax errors, at which byte.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace trident::io {

// Parses one JSON document (UTF-8; surrounding whitespace allowed). Object
// members keep their file order.
absl::StatusOr<nlohmann::ordered_json> ParseJsonDocument(absl::string_view text);

// Parses a flat `{"key": 123, ...}` object straight into (key, value) pairs in
// file order, without building a tree (GPT-2's encoder.json has 50257
// members). Values must be integers in the int64 range. Duplicate keys are
// kept: the caller reports them with its own context.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ParseJsonObjectOfInts(
    absl::string_view text);

// "null", "boolean", "number", "string", "array", "object", ...
std::string JsonTypeName(const nlohmann::ordered_json& value);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_JSON_PARSE_H_
