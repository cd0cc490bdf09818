#include "training/data/gpt2_bpe_tokenizer.h"

#include <array>
#include <queue>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/io/file_util.h"
#include "core/io/json_parse.h"
#include "core/io/utf8.h"
#include "training/data/gpt2_pretokenizer.h"

namespace trident::data {

using ::trident::io::AppendUtf8;
using ::trident::io::JoinPath;
using ::trident::io::ParseJsonObjectOfInts;
using ::trident::io::ReadFileToString;

namespace {

constexpr uint32_t kNumMappedCodePoints = 256 + 68;  // U+0000 .. U+0143 cover the image.
constexpr absl::string_view kEndOfText = "<|endoftext|>";

struct ByteAlphabet {
  std::array<uint32_t, 256> byte_to_code_point;
  std::array<int16_t, kNumMappedCodePoints> code_point_to_byte;  // -1: not in the image.
};

bool IsPrintedAsItself(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

ByteAlphabet MakeByteAlphabet() {
  ByteAlphabet alphabet;
  alphabet.code_point_to_byte.fill(-1);
  uint32_t next_shifted = 256;
  for (int byte = 0; byte < 256; ++byte) {
    const uint32_t code_point = IsPrintedAsItself(byte) ? byte : next_shifted++;
    alphabet.byte_to_code_point[byte] = code_point;
    alphabet.code_point_to_byte[code_point] = static_cast<int16_t>(byte);
  }
  return alphabet;
}

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* const alphabet = new ByteAlphabet(MakeByteAlphabet());
  return *alphabet;
}

// Turns a token spelled in GPT-2's alphabet (UTF-8) back into the bytes it
// stands for. Errors say which character is not in the alphabet.
absl::StatusOr<std::string> AlphabetToBytes(absl::string_view spelled) {
  std::string bytes;
  bytes.reserve(spelled.size());
  size_t pos = 0;
  while (pos < spelled.size()) {
    const auto lead = static_cast<unsigned char>(spelled[pos]);
    uint32_t code_point;
    size_t length;
    if (lead < 0x80) {
      code_point = lead, length = 1;
    } else if ((lead & 0xE0) == 0xC0 && pos + 1 < spelled.size() &&
               (static_cast<unsigned char>(spelled[pos + 1]) & 0xC0) == 0x80) {
      code_point = ((lead & 0x1Fu) << 6) | (static_cast<unsigned char>(spelled[pos + 1]) & 0x3Fu);
      length = 2;
    } else {
      // Every character of the alphabet is below U+0800, so 1 or 2 UTF-8 bytes.
      return absl::InvalidArgumentError(absl::StrFormat(
          "byte 0x%02x at offset %d is not a character of GPT-2's byte alphabet", lead, pos));
    }
    if (code_point >= kNumMappedCodePoints || Alphabet().code_point_to_byte[code_point] < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "character U+%04X at offset %d is not in GPT-2's byte alphabet", code_point, pos));
    }
    bytes.push_back(static_cast<char>(Alphabet().code_point_to_byte[code_point]));
    pos += length;
  }
  return bytes;
}

}  // namespace

uint32_t ByteToUnicode(uint8_t byte) { return Alphabet().byte_to_code_point[byte]; }

absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> Gpt2BpeTokenizer::LoadFromDirectory(
    absl::string_view dir) {
  const std::string encoder_path = JoinPath(dir, "encoder.json");
  const std::string merges_path = JoinPath(dir, "vocab.bpe");
  auto encoder_json = ReadFileToString(encoder_path);
  if (!encoder_json.ok()) {
    return absl::Status(encoder_json.status().code(),
                        absl::StrCat("GPT-2 BPE files: ", encoder_json.status().message(),
                                     " (tools/fetch_gpt2_bpe.sh fetches them into data/gpt2)"));
  }
  auto vocab_bpe = ReadFileToString(merges_path);
  if (!vocab_bpe.ok()) {
    return absl::Status(vocab_bpe.status().code(),
                        absl::StrCat("GPT-2 BPE files: ", vocab_bpe.status().message(),
                                     " (tools/fetch_gpt2_bpe.sh fetches them into data/gpt2)"));
  }
  return FromContents(*encoder_json, *vocab_bpe, JoinPath(dir, "{encoder.json,vocab.bpe}"));
}

absl::StatusOr<std::unique_ptr<Gpt2BpeTokenizer>> Gpt2BpeTokenizer::FromContents(
    absl::string_view encoder_json, absl::string_view vocab_bpe, absl::string_view source) {
  auto error = [&](absl::string_view file, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", file, ": ", what));
  };
  auto members = ParseJsonObjectOfInts(encoder_json);
  if (!members.ok()) return error("encoder.json", std::string(members.status().message()));
  if (members->empty()) return error("encoder.json", "the vocabulary is empty");
  if (members->size() > static_cast<size_t>(INT32_MAX)) {
    return error("encoder.json", "more than 2^31-1 tokens");
  }

  std::unique_ptr<Gpt2BpeTokenizer> tokenizer(new Gpt2BpeTokenizer());
  const int64_t vocab_size = static_cast<int64_t>(members->size());
  tokenizer->id_to_bytes_.resize(vocab_size);
  std::vector<bool> id_seen(vocab_size, false);
  absl::flat_hash_map<std::string, int32_t> bytes_to_id;
  bytes_to_id.reserve(vocab_size);
  for (auto& [spelled, id] : *members) {
    auto bytes = AlphabetToBytes(spelled);
    if (!bytes.ok()) {
      return error("encoder.json", absl::StrCat("token \"", spelled, "\" (id ", id,
                                                "): ", bytes.status().message()));
    }
    if (id < 0 || id >= vocab_size) {
      return error("encoder.json",
                   absl::StrCat("token \"", spelled, "\" has id ", id, ", outside [0, ", vocab_size,
                                "): ids must number the ", vocab_size, " tokens densely"));
    }
    if (id_seen[id]) {
      return error("encoder.json",
                   absl::StrCat("id ", id, " is given to two tokens (one is \"", spelled, "\")"));
    }
    if (!bytes_to_id.emplace(*bytes, static_cast<int32_t>(id)).second) {
      return error("encoder.json", absl::StrCat("token \"", spelled, "\" appears twice"));
    }
    id_seen[id] = true;
    tokenizer->id_to_bytes_[id] = *std::move(bytes);
  }
  for (int byte = 0; byte < 256; ++byte) {
    const auto it = bytes_to_id.find(std::string(1, static_cast<char>(byte)));
    if (it == bytes_to_id.end()) {
      std::string spelled;
      AppendUtf8(ByteToUnicode(static_cast<uint8_t>(byte)), &spelled);
      return error("encoder.json",
                   absl::StrFormat("no token for the single byte 0x%02x (spelled \"%s\"); a "
                                   "byte-level vocabulary needs all 256",
                                   byte, spelled));
    }
    tokenizer->byte_to_id_[byte] = it->second;
  }
  if (const auto it = bytes_to_id.find(kEndOfText); it != bytes_to_id.end()) {
    tokenizer->end_of_text_id_ = it->second;
  }

  // vocab.bpe: an optional "#version" line, then "left right" per line in rank order.
  int32_t rank = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(vocab_bpe, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_number == 1 && absl::StartsWith(line, "#version")) continue;
    if (line.empty()) continue;
    const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return error("vocab.bpe", absl::StrCat("line ", line_number, " (\"", line,
                                             "\") is not two tokens separated by one space"));
    }
    int32_t pair_ids[2];
    std::string merged;
    for (int side = 0; side < 2; ++side) {
      auto bytes = AlphabetToBytes(parts[side]);
      if (!bytes.ok()) {
        return error("vocab.bpe", absl::StrCat("line ", line_number, ": token \"", parts[side],
                                               "\": ", bytes.status().message()));
      }
      const auto it = bytes_to_id.find(*bytes);
      if (it == bytes_to_id.end()) {
        return error("vocab.bpe", absl::StrCat("line ", line_number, ": token \"", parts[side],
                                               "\" is not in encoder.json"));
      }
      pair_ids[side] = it->second;
      merged += *bytes;
    }
    const auto merged_it = bytes_to_id.find(merged);
    if (merged_it == bytes_to_id.end()) {
      return error("vocab.bpe",
                   absl::StrCat("line ", line_number, ": the merge of \"", parts[0], "\" and \"",
                                parts[1], "\" is not a token of encoder.json"));
    }
    const bool inserted =
        tokenizer->merges_
            .emplace(PairKey(pair_ids[0], pair_ids[1]), Merge{rank, merged_it->second})
            .second;
    if (!inserted) {
      return error("vocab.bpe", absl::StrCat("line ", line_number, ": the merge \"", line,
                                             "\" is listed twice"));
    }
    ++rank;
  }
  return tokenizer;
}

std::vector<int32_t> Gpt2BpeTokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  for (absl::string_view word : SplitGpt2Words(text)) EncodeWord(word, &ids);
  return ids;
}

void Gpt2BpeTokenizer::EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  if (word.size() == 1) {
    ids->push_back(byte_to_id_[static_cast<unsigned char>(word[0])]);
    return;
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    absl::ReaderMutexLock lock(&cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> merged = MergeWord(word);
  ids->insert(ids->end(), merged.begin(), merged.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mutex_);
    if (cache_.size() >= kMaxCachedWords) cache_.clear();
    cache_.emplace(std::string(word), std::move(merged));
  }
}

// BPE over one word in O(n log n): symbols form a linked list over the word's
// byte positions; a heap holds candidate merges ordered by (rank, position).
// Popping the lowest rank merges its occurrences left to right, exactly as
// encoder.py's "merge every occurrence of the best pair" pass does: a merge
// never creates another occurrence of the pair being merged (the merged token
// is longer than either part), and entries made stale by an earlier merge
// (their left symbol changed, or its right neighbour did) are skipped.
std::vector<int32_t> Gpt2BpeTokenizer::MergeWord(absl::string_view word) const {
  const int n = static_cast<int>(word.size());
  std::vector<int32_t> symbol(n);
  std::vector<int> next(n);
  std::vector<int> prev(n);
  for (int i = 0; i < n; ++i) {
    symbol[i] = byte_to_id_[static_cast<unsigned char>(word[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }

  struct Candidate {
    int32_t rank;
    int position;  // Of the left symbol.
    int32_t left;
    int32_t right;
    int32_t merged;
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int position) {
    if (position < 0 || next[position] < 0) return;
    const int32_t left = symbol[position];
    const int32_t right = symbol[next[position]];
    const auto it = merges_.find(PairKey(left, right));
    if (it != merges_.end()) {
      heap.push(Candidate{it->second.rank, position, left, right, it->second.merged_id});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate candidate = heap.top();
    heap.pop();
    const int position = candidate.position;
    // symbol[] of a position absorbed into its left neighbour is never read
    // again: no live node links to it, and its heap entries fail this check
    // because its symbol was overwritten below.
    if (symbol[position] != candidate.left) continue;
    const int right_position = next[position];
    if (right_position < 0 || symbol[right_position] != candidate.right) continue;
    symbol[position] = candidate.merged;
    symbol[right_position] = -1;
    next[position] = next[right_position];
    if (next[position] >= 0) prev[next[position]] = position;
    consider(prev[position]);
    consider(position);
  }

  std::vector<int32_t> ids;
  for (int i = 0; i >= 0; i = next[i]) ids.push_back(symbol[i]);
  return ids;
}

absl::StatusOr<std::string> Gpt2BpeTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "gpt2 tokenizer: token %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
          vocab_size()));
    }
    text += id_to_bytes_[ids[i]];
  }
  return text;
}

}  // namespace trident::data
