#ifndef TRIDENT_TRAINING_DATA_TOKENIZER_H_
#define TRIDENT_TRAINING_DATA_TOKENIZER_H_

// The interface every tokenizer implements: text <-> token ids in
// [0, vocab_size()). Text is a byte string (UTF-8 expected, not required).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trident::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Every byte string has an encoding; Decode(Encode(text)) == text.
  // Safe to call from several threads at once.
  virtual std::vector<int32_t> Encode(absl::string_view text) const = 0;

  // The bytes the ids stand for (not necessarily valid UTF-8 when a multi-byte
  // character is split across a slice). An id outside [0, vocab_size()) is an
  // INVALID_ARGUMENT naming its position and value.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const = 0;

  virtual int64_t vocab_size() const = 0;

  // "byte", "gpt2": what --tokenizer accepts.
  virtual std::string name() const = 0;

  // The id that separates documents in training data, when the vocabulary has
  // one (GPT-2's <|endoftext|>); Encode never produces it from text.
  virtual std::optional<int32_t> end_of_text_id() const { return std::nullopt; }
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_TOKENIZER_H_
