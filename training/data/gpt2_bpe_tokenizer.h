#ifndef TRIDENT_TRAINING_DATA_GPT2_BPE_TOKENIZER_H_
#define TRIDENT_TRAINING_DATA_GPT2_BPE_TOKENIZER_H_

// GPT-2's byte-level BPE, loaded from the two files OpenAI published:
// - encoder.json: token string -> id, where each token string spells bytes in
//   GPT-2's byte-to-unicode alphabet (ByteToUnicode below);
// - vocab.bpe: "#version" then one merge "left right" per line, in rank order.
// Encoding follows OpenAI's encoder.py: pre-tokenise (gpt2_pretokenizer.h), then
// in each word repeatedly merge the adjacent pair of lowest rank (all its
// occurrences, left to right) until no pair has a rank. Internally tokens are
// ids and bytes, never unicode strings; results are cached per word.
//
// Decode returns the raw bytes (encoder.py would replace invalid UTF-8 with
// U+FFFD; raw bytes keep Decode(Encode(x)) == x for any x).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "training/data/tokenizer.h"

namespace trident::data {

// GPT-2's bijection between the 256 byte values and printable code points:
// printable Latin-1 bytes map to themselves, the other 68 to U+0100 upwards in
// byte order (so ' ' -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
uint32_t ByteToUnicode(uint8_t byte);

class Gpt2BpeTokenizer final : public Tokenizer {
 public:
  // Reads `dir`/encoder.json and `dir`/vocab.bpe.
  static absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> LoadFromDirectory(absl::string_view dir);

  // The same from the files' contents; `source` names them in errors.
  static absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> FromContents(
      absl::string_view encoder_json, absl::string_view vocab_bpe, absl::string_view source);

  std::vector<int32_t> Encode(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  std::string name() const override { return "gpt2"; }
  std::optional<int32_t> end_of_text_id() const override { return end_of_text_id_; }

  int64_t num_merges() const { return static_cast<int64_t>(merges_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };

  Gpt2BpeTokenizer() = default;

  // Appends the ids of one pre-tokenised word.
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;
  std::vector<int32_t> MergeWord(absl::string_view word) const;

  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  std::vector<std::string> id_to_bytes_;
  int32_t byte_to_id_[256] = {};
  absl::flat_hash_map<uint64_t, Merge> merges_;  // PairKey(left, right) -> merge.
  std::optional<int32_t> end_of_text_id_;

  // Words seen before; bounded so arbitrary input cannot grow it without limit.
  static constexpr size_t kMaxCachedWords = 1 << 20;
  static constexpr size_t kMaxCachedWordBytes = 64;
  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_
      ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_GPT2_BPE_TOKENIZER_H_
