#ifndef TRIDENT_CORE_IO_TEXT_PROTO_H_
#define TRIDENT_CORE_IO_TEXT_PROTO_H_

// Protobuf text format with the project's error convention: every textproto
// reader (layouts, training configs, checkpoint metadata) parses through
// ParseTextProto, so every one reports its first error the same way:
// "<source>:<line>:<column>: <parser message>", 1-based, pointing at the
// offending field or value name rather than at the token after it.

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace trident::io {

// Parses `text` into `message` (cleared first). On error, INVALID_ARGUMENT
// naming `source_name` and the position of the first error.
absl::Status ParseTextProto(absl::string_view text, absl::string_view source_name,
                            google::protobuf::Message* message);

// `message` in text format (TextFormat::PrintToString). CHECK-fails only if
// the printer does, which it does not for a valid message.
std::string PrintTextProto(const google::protobuf::Message& message);

}  // namespace trident::io

#endif  // TRIDENT_CORE_IO_TEXT_PROTO_H_
