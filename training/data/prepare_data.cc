#include "training/data/prepare_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/io/file_util.h"
#include "core/status_macros.h"
#include "training/data/token_file.h"
#include "training/data/tokenizer.h"
#include "training/data/tokenizer_factory.h"

namespace trident::data {

using ::trident::io::JoinPath;
using ::trident::io::ReadFileToString;

namespace {

namespace fs = std::filesystem;

bool IsBlank(absl::string_view line) {
  return std::all_of(line.begin(), line.end(),
                     [](char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); });
}

// Calls visit(line) for each line of `text` without its '\n'.
template <typename Visit>
void ForEachLine(absl::string_view text, Visit visit) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == absl::string_view::npos) end = text.size();
    visit(text.substr(pos, end - pos));
    pos = end + 1;
  }
}

// The input's files, in a fixed order: the file itself, or a directory's
// regular files (recursively, hidden names skipped) sorted by path. Files in
// `outputs` (and their temporaries) are skipped, so a directory can hold its own
// token files and be prepared again.
absl::StatusOr<std::vector<std::string>> ListInputFiles(const std::string& input,
                                                        const std::vector<std::string>& outputs) {
  std::error_code error;
  const fs::file_status status = fs::status(input, error);
  if (error || !fs::exists(status)) {
    const bool is_default_corpus = absl::EndsWith(input, PrepareDataOptions().input);
    return absl::NotFoundError(absl::StrCat(
        "input ", input, ": ", error ? error.message() : std::string("No such file or directory"),
        is_default_corpus ? " (tools/fetch_corpus.sh fetches it; ./bazelw runs that)" : ""));
  }
  if (fs::is_regular_file(status)) return std::vector<std::string>{input};
  if (!fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("input ", input, " is neither a regular file nor a directory"));
  }
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(input, error), end;
  for (; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(error)) continue;
    const fs::path canonical = fs::weakly_canonical(it->path(), error);
    const bool is_output = std::any_of(outputs.begin(), outputs.end(), [&](const std::string& out) {
      std::error_code ignored;
      const std::string output = fs::weakly_canonical(out, ignored).string();
      return canonical.string() == output ||
             absl::StartsWith(canonical.string(), absl::StrCat(output, ".tmp-"));
    });
    if (!is_output) files.push_back(it->path().string());
  }
  if (error) {
    return absl::ErrnoToStatus(error.value(), absl::StrCat("cannot list directory ", input));
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("input directory ", input, " has no files"));
  }
  return files;
}

absl::Status CreateDirectories(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::ErrnoToStatus(error.value(), absl::StrCat("cannot create directory ", dir));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<absl::string_view> SplitDocuments(absl::string_view text) {
  std::vector<absl::string_view> documents;
  const char* begin = nullptr;  // Start of the open document, if any.
  const char* end = nullptr;    // End of its last non-blank line.
  ForEachLine(text, [&](absl::string_view line) {
    if (IsBlank(line)) {
      if (begin != nullptr) documents.emplace_back(begin, end - begin);
      begin = nullptr;
      return;
    }
    if (begin == nullptr) begin = line.data();
    end = line.data() + line.size();
  });
  if (begin != nullptr) documents.emplace_back(begin, end - begin);
  return documents;
}

std::vector<absl::string_view> SplitNonBlankLines(absl::string_view text) {
  std::vector<absl::string_view> lines;
  ForEachLine(text, [&](absl::string_view line) {
    if (!IsBlank(line)) lines.push_back(line);
  });
  return lines;
}

bool IsValidationUnit(int64_t index, double val_fraction) {
  return std::floor(static_cast<double>(index + 1) * val_fraction) >
         std::floor(static_cast<double>(index) * val_fraction);
}

std::string TrainTokenPath(absl::string_view output_dir) {
  return JoinPath(output_dir, "train.bin");
}

std::string ValTokenPath(absl::string_view output_dir) { return JoinPath(output_dir, "val.bin"); }

bool PreparedDataExists(absl::string_view output_dir) {
  std::error_code error;
  return fs::is_regular_file(TrainTokenPath(output_dir), error) &&
         fs::is_regular_file(ValTokenPath(output_dir), error);
}

absl::StatusOr<PrepareDataResult> PrepareData(const PrepareDataOptions& options) {
  if (!std::isfinite(options.val_fraction) || options.val_fraction < 0 ||
      options.val_fraction >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("val_fraction ", options.val_fraction, " is outside [0, 1)"));
  }
  ASSIGN_OR_RETURN(const std::unique_ptr<Tokenizer> tokenizer,
                   MakeTokenizer(options.tokenizer, options.gpt2_dir));
  const std::string train_path = TrainTokenPath(options.output_dir);
  const std::string val_path = ValTokenPath(options.output_dir);
  ASSIGN_OR_RETURN(const std::vector<std::string> files,
                   ListInputFiles(options.input, {train_path, val_path}));

  PrepareDataResult result;
  result.tokenizer = tokenizer->name();
  result.vocab_size = tokenizer->vocab_size();
  result.input_files = static_cast<int64_t>(files.size());

  // Read everything first (corpora here are megabytes): the split needs the
  // number of documents before any is assigned.
  std::vector<std::string> contents;
  std::vector<absl::string_view> documents;
  for (const std::string& file : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFileToString(file));
    result.input_bytes += static_cast<int64_t>(text.size());
    contents.push_back(std::move(text));
  }
  for (const std::string& text : contents) {
    for (absl::string_view document : SplitDocuments(text)) documents.push_back(document);
  }
  if (documents.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("input ", options.input, " has no text"));
  }

  const double f = options.val_fraction;
  std::vector<absl::string_view> units = std::move(documents);
  result.split_unit = "document";
  auto validation_count = [f](size_t n) {
    return static_cast<int64_t>(std::floor(static_cast<double>(n) * f));
  };
  if (f > 0 && validation_count(units.size()) == 0) {
    units.clear();
    for (const std::string& text : contents) {
      for (absl::string_view line : SplitNonBlankLines(text)) units.push_back(line);
    }
    result.split_unit = "line";
    if (validation_count(units.size()) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("val_fraction ", f, " of the ", units.size(), " lines of ", options.input,
                       " selects no validation text; give more text or a larger val_fraction"));
    }
  }

  RETURN_IF_ERROR(CreateDirectories(options.output_dir));
  result.train_path = train_path;
  result.val_path = val_path;
  ASSIGN_OR_RETURN(TokenFileWriter train,
                   TokenFileWriter::Create(result.train_path, result.vocab_size));
  ASSIGN_OR_RETURN(TokenFileWriter val,
                   TokenFileWriter::Create(result.val_path, result.vocab_size));

  const Tokenizer& tok = *tokenizer;
  const bool line_units = result.split_unit == "line";
  const std::optional<int32_t> end_of_text = tok.end_of_text_id();
  std::string unit_text;
  for (size_t i = 0; i < units.size(); ++i) {
    unit_text.assign(units[i].data(), units[i].size());
    if (line_units) {
      unit_text += "\n";
    } else if (!end_of_text.has_value()) {
      unit_text += "\n\n";
    }
    std::vector<int32_t> tokens = tok.Encode(unit_text);
    if (!line_units && end_of_text.has_value()) tokens.push_back(*end_of_text);
    const bool is_val = IsValidationUnit(static_cast<int64_t>(i), f);
    RETURN_IF_ERROR((is_val ? val : train).Append(tokens));
    (is_val ? result.val_units : result.train_units) += 1;
  }
  result.train_tokens = train.token_count();
  result.val_tokens = val.token_count();
  if (result.train_tokens == 0) {
    return absl::InvalidArgumentError(absl::StrCat("val_fraction ", f, " leaves no training text"));
  }
  RETURN_IF_ERROR(val.Finish());
  RETURN_IF_ERROR(train.Finish());
  return result;
}

}  // namespace trident::data
