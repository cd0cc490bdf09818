#ifndef TRIDENT_TRAINING_DATA_TOKENIZER_FACTORY_H_
#define TRIDENT_TRAINING_DATA_TOKENIZER_FACTORY_H_

// Makes a tokenizer from its --tokenizer name.

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "training/data/tokenizer.h"

namespace trident::data {

// "byte": ByteTokenizer; "gpt2": Gpt2BpeTokenizer from `gpt2_dir` (encoder.json
// and vocab.bpe). Anything else is an INVALID_ARGUMENT listing the choices.
absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(absl::string_view name,
                                                         absl::string_view gpt2_dir);

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_TOKENIZER_FACTORY_H_
