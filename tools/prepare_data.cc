// Turns a text corpus into the token files training reads:
//   bazel run //tools:prepare_data -- [--input=data/brown/brown.txt]
//       [--output_dir=data/brown] [--tokenizer=byte|gpt2] [--gpt2_dir=data/gpt2]
//       [--val_fraction=0.05]
// writes <output_dir>/train.bin and <output_dir>/val.bin (see
// training/data/prepare_data.h for the split, token_file.h for the format).
// Relative paths are relative to the directory `bazel run` was typed in.

#include "training/data/prepare_data.h"

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "core/io/user_path.h"

namespace {
const trident::data::PrepareDataOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, input, kDefaults.input,
          "Text file, or directory of text files, to tokenize.");
ABSL_FLAG(std::string, output_dir, kDefaults.output_dir,
          "Directory for train.bin and val.bin (created when missing).");
ABSL_FLAG(std::string, tokenizer, kDefaults.tokenizer,
          "byte (256 ids, no files needed) or gpt2 (BPE from --gpt2_dir).");
ABSL_FLAG(std::string, gpt2_dir, kDefaults.gpt2_dir,
          "Directory with GPT-2's encoder.json and vocab.bpe (tools/fetch_gpt2_bpe.sh).");
ABSL_FLAG(double, val_fraction, kDefaults.val_fraction,
          "Fraction of documents for validation, in [0, 1): document i is validation when "
          "floor((i+1)*f) > floor(i*f), i.e. every 20th at 0.05.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Tokenizes a text corpus into <output_dir>/train.bin and <output_dir>/val.bin.");
  absl::ParseCommandLine(argc, argv);

  trident::data::PrepareDataOptions options;
  options.input = trident::io::ResolveUserPath(absl::GetFlag(FLAGS_input));
  options.output_dir = trident::io::ResolveUserPath(absl::GetFlag(FLAGS_output_dir));
  options.tokenizer = absl::GetFlag(FLAGS_tokenizer);
  options.gpt2_dir = trident::io::ResolveUserPath(absl::GetFlag(FLAGS_gpt2_dir));
  options.val_fraction = absl::GetFlag(FLAGS_val_fraction);

  const auto result = trident::data::PrepareData(options);
  if (!result.ok()) {
    absl::FPrintF(stderr, "prepare_data: %s\n", result.status().ToString());
    return 1;
  }
  absl::PrintF("prepare_data: %s (%d bytes in %d file%s), tokenizer %s (vocabulary %d)\n",
               options.input, result->input_bytes, result->input_files,
               result->input_files == 1 ? "" : "s", result->tokenizer, result->vocab_size);
  absl::PrintF("  train: %8d %ss  %10d tokens  -> %s\n", result->train_units, result->split_unit,
               result->train_tokens, result->train_path);
  absl::PrintF("  val:   %8d %ss  %10d tokens  -> %s\n", result->val_units, result->split_unit,
               result->val_tokens, result->val_path);
  return 0;
}
