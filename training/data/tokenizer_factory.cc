#include "training/data/tokenizer_factory.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "training/data/byte_tokenizer.h"
#include "training/data/gpt2_bpe_tokenizer.h"

namespace trident::data {

absl::StatusOr<std::unique_ptr<Tokenizer>> MakeTokenizer(absl::string_view name,
                                                         absl::string_view gpt2_dir) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (name == "gpt2") {
    ASSIGN_OR_RETURN(std::unique_ptr<Gpt2BpeTokenizer> tokenizer,
                     Gpt2BpeTokenizer::LoadFromDirectory(gpt2_dir));
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tokenizer \"", name, "\" is not one of: byte, gpt2"));
}

}  // namespace trident::data
