#ifndef TRIDENT_TRAINING_DATA_BYTE_TOKENIZER_H_
#define TRIDENT_TRAINING_DATA_BYTE_TOKENIZER_H_

// The default tokenizer: each byte is its own token (vocabulary 256). Needs no
// files, handles any input exactly, and keeps the embedding table tiny.

#include "training/data/tokenizer.h"

namespace trident::data {

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int64_t kVocabSize = 256;

  std::vector<int32_t> Encode(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return kVocabSize; }
  std::string name() const override { return "byte"; }
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_BYTE_TOKENIZER_H_
