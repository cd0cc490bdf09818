#ifndef TRIDENT_TRAINING_DATA_PREPARE_DATA_H_
#define TRIDENT_TRAINING_DATA_PREPARE_DATA_H_

// Text -> train.bin + val.bin (token_file.h), the work of //tools:prepare_data,
// also callable by the trainer when its default data is not prepared yet.
//
// The split is deterministic and interleaved. The text is cut into documents:
// runs of lines separated by one or more blank (empty or whitespace-only)
// lines; each file of a directory input ends a document too. Document i
// (0-based, in file order) goes to validation when floor((i+1)*f) > floor(i*f)
// for f = val_fraction, i.e. exactly floor(N*f) of N documents, evenly spread:
// with f = 0.05, every 20th document (19, 39, ...). Interleaving matters for
// the Brown corpus, which is ordered by genre: "the last 5%" would validate on
// one genre only. When the text has too few documents for f to select one, the
// unit becomes the line (non-blank lines) instead, and the result says so.
//
// Each document is written as its text followed by a separator: the
// tokenizer's end-of-text token when it has one (GPT-2), otherwise the text
// "\n\n". In line units each line is written with its "\n".

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::data {

struct PrepareDataOptions {
  std::string input = "data/brown/brown.txt";  // A text file, or a directory of them.
  std::string output_dir = "data/brown";
  std::string tokenizer = "byte";      // "byte" or "gpt2".
  std::string gpt2_dir = "data/gpt2";  // encoder.json and vocab.bpe.
  double val_fraction = 0.05;          // In [0, 1).
};

struct PrepareDataResult {
  std::string train_path;
  std::string val_path;
  std::string tokenizer;
  int64_t vocab_size = 0;
  int64_t input_bytes = 0;
  int64_t input_files = 0;
  std::string split_unit;  // "document" or "line".
  int64_t train_units = 0;
  int64_t val_units = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
};

// Paths are used as given (resolve user paths first, user_path.h). Writes
// output_dir/train.bin and output_dir/val.bin, each atomically; creates
// output_dir when missing.
absl::StatusOr<PrepareDataResult> PrepareData(const PrepareDataOptions& options);

std::string TrainTokenPath(absl::string_view output_dir);  // output_dir/train.bin
std::string ValTokenPath(absl::string_view output_dir);    // output_dir/val.bin

// True when both token files exist (not validated: TokenFile::Open does that).
bool PreparedDataExists(absl::string_view output_dir);

// Building blocks, exposed for tests.
// Documents of `text`: maximal runs of non-blank lines, each without its final
// line break.
std::vector<absl::string_view> SplitDocuments(absl::string_view text);
// Non-blank lines of `text`, without their line breaks.
std::vector<absl::string_view> SplitNonBlankLines(absl::string_view text);
// Whether unit `index` goes to validation under `val_fraction` (rule above).
bool IsValidationUnit(int64_t index, double val_fraction);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_PREPARE_DATA_H_
