#include "topology/layout_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "topology/layout_names.h"

namespace trident::topology {
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

absl::StatusOr<ParallelLayout> ParseLayoutText(absl::string_view text,
                                               absl::string_view source_name) {
  FirstErrorCollector errors(text, source_name);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  ParallelLayout layout;
  if (!parser.ParseFromString(std::string(text), &layout)) {
    if (errors.error().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": not a valid ParallelLayout textproto"));
    }
    return absl::InvalidArgumentError(errors.error());
  }
  return layout;
}

absl::StatusOr<ParallelLayout> LoadLayoutFromFile(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layout file ", path, " is a directory, not a textproto file"));
  }
  std::ifstream file(path);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("cannot open layout file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::NotFoundError(
        absl::StrCat("cannot read layout file ", path, ": ", std::strerror(errno)));
  }
  return ParseLayoutText(contents.str(), path);
}

std::string LayoutToText(const ParallelLayout& layout) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(layout, &text);
  return text;
}

bool LayoutOverrides::empty() const {
  return !tp && !pp && !dp && !micro_batches && !micro_batch_size && !global_batch_size &&
         !virtual_stages &&
         !schedule && !sequence_parallel && !zero_stage && !rank_order && !recompute &&
         !gradient_compression;
}

absl::Status ApplyOverrides(const LayoutOverrides& overrides, ParallelLayout* layout) {
  // Work on a copy so a failed override leaves the caller's layout untouched.
  ParallelLayout result = *layout;
  if (overrides.tp) result.set_tensor_parallel(*overrides.tp);
  if (overrides.pp) result.set_pipeline_parallel(*overrides.pp);
  if (overrides.dp) result.set_data_parallel(*overrides.dp);
  if (overrides.micro_batches) result.set_num_micro_batches(*overrides.micro_batches);
  if (overrides.micro_batch_size) result.set_micro_batch_size(*overrides.micro_batch_size);
  if (overrides.global_batch_size) result.set_global_batch_size(*overrides.global_batch_size);
  // A new dp, micro-batch size or global batch re-derives the micro-batch count.
  if (result.global_batch_size() > 0 && !overrides.micro_batches &&
      (overrides.dp || overrides.micro_batch_size || overrides.global_batch_size)) {
    result.clear_num_micro_batches();
  }
  if (overrides.virtual_stages) result.set_virtual_pipeline_stages(*overrides.virtual_stages);
  if (overrides.schedule) {
    ASSIGN_OR_RETURN(PipelineSchedule schedule, ParseScheduleName(*overrides.schedule));
    result.set_schedule(schedule);
  }
  if (overrides.sequence_parallel) result.set_sequence_parallel(*overrides.sequence_parallel);
  if (overrides.zero_stage) result.set_zero_stage(*overrides.zero_stage);
  if (overrides.rank_order) result.set_rank_order(*overrides.rank_order);
  if (overrides.recompute) {
    ASSIGN_OR_RETURN(Recompute::Policy policy, ParseRecomputeName(*overrides.recompute));
    result.set_recompute(policy);
  }
  if (overrides.gradient_compression) {
    ASSIGN_OR_RETURN(GradientCompression::Method method,
                     ParseCompressionName(*overrides.gradient_compression));
    result.set_gradient_compression(method);
  }
  *layout = std::move(result);
  return absl::OkStatus();
}

}  // namespace trident::topology
