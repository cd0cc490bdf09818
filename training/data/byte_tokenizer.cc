#include "training/data/byte_tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace trident::data {

std::vector<int32_t> ByteTokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    ids[i] = static_cast<unsigned char>(text[i]);
  }
  return ids;
}

absl::StatusOr<std::string> ByteTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string text(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= kVocabSize) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "byte tokenizer: token %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
          kVocabSize));
    }
    text[i] = static_cast<char>(ids[i]);
  }
  return text;
}

}  // namespace trident::data
