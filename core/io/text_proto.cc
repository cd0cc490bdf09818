#include "core/io/text_proto.h"

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace trident::io {
namespace {

// Where the tokenizer would say `offset` is: 0-based line and column, tabs
// advancing the column to the next multiple of 8 as protobuf's tokenizer does.
struct TextPosition {
  int line = 0;
  int column = 0;
};

TextPosition PositionOf(absl::string_view text, size_t offset) {
  TextPosition p;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 0;
    } else if (text[i] == '\t') {
      p.column += 8 - p.column % 8;
    } else {
      ++p.column;
    }
  }
  return p;
}

size_t OffsetOf(absl::string_view text, TextPosition target) {
  size_t i = 0;
  TextPosition p;
  while (i < text.size() && p.line < target.line) {
    if (text[i++] == '\n') ++p.line;
  }
  while (i < text.size() && text[i] != '\n' && p.column < target.column) {
    p.column += text[i++] == '\t' ? 8 - p.column % 8 : 1;
  }
  return i;
}

bool IsWordChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

// The field or value name an error is about, for the parser's messages that
// name one.
std::optional<std::string> NameInMessage(absl::string_view message) {
  static constexpr absl::string_view kLeads[] = {
      "has no field named \"", "Unknown enumeration value of \"", "Non-repeated field \""};
  for (absl::string_view lead : kLeads) {
    const size_t at = message.find(lead);
    if (at == absl::string_view::npos) continue;
    const size_t start = at + lead.size();
    const size_t end = message.find('"', start);
    if (end == absl::string_view::npos || end == start) return std::nullopt;
    return std::string(message.substr(start, end - start));
  }
  return std::nullopt;
}

// Keeps the parser's first error with its position. TextFormat's default
// collector only logs to stderr, and its boolean result says nothing about
// what went wrong.
//
// The parser reports an error at the token AFTER the offending one: the ':'
// after an unknown field name, or the start of the next line after a bad enum
// value. When the message names the offending field or value, the position is
// moved back to the last whole-word occurrence of that name before it, so the
// line and column point at the culprit.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  FirstErrorCollector(absl::string_view text, absl::string_view source_name)
      : text_(text), source_name_(source_name) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!error_.empty()) return;
    // A line of -1 means the error has no position (e.g. an unset required field).
    if (line < 0) {
      error_ = absl::StrCat(source_name_, ": ", message);
      return;
    }
    TextPosition position{line, column};
    if (std::optional<std::string> name = NameInMessage(message)) {
      position = BackToName(*name, position);
    }
    // The parser counts from 0; editors count from 1.
    error_ = absl::StrFormat("%s:%d:%d: %s", source_name_, position.line + 1,
                             position.column + 1, message);
  }

  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}

  const std::string& error() const { return error_; }

 private:
  TextPosition BackToName(absl::string_view name, TextPosition reported) const {
    size_t search_end = OffsetOf(text_, reported);
    while (search_end >= name.size()) {
      const size_t at = text_.rfind(name, search_end - name.size());
      if (at == absl::string_view::npos) break;
      const bool starts_word = at == 0 || !IsWordChar(text_[at - 1]);
      const bool ends_word =
          at + name.size() >= text_.size() || !IsWordChar(text_[at + name.size()]);
      if (starts_word && ends_word) return PositionOf(text_, at);
      if (at == 0) break;
      search_end = at + name.size() - 1;
    }
    return reported;
  }

  absl::string_view text_;
  std::string source_name_;
  std::string error_;
};

}  // namespace

absl::Status ParseTextProto(absl::string_view text, absl::string_view source_name,
                            google::protobuf::Message* message) {
  FirstErrorCollector errors(text, source_name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), message)) {
    if (errors.error().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source_name, ": not a valid ",
                                                     message->GetDescriptor()->name(),
                                                     " textproto"));
    }
    return absl::InvalidArgumentError(errors.error());
  }
  return absl::OkStatus();
}

std::string PrintTextProto(const google::protobuf::Message& message) {
  std::string text;
  TRIDENT_CHECK(google::protobuf::TextFormat::PrintToString(message, &text))
      << "printing a " << message.GetDescriptor()->name();
  return text;
}

}  // namespace trident::io
