#include "training/data/gpt2_pretokenizer.h"

#include <pcre2.h>

#include <memory>

#include "core/check.h"

namespace trident::data {
namespace {

// GPT-2's pattern, verbatim from OpenAI's encoder.py.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The compiled pattern, shared by every thread (a compiled PCRE2 pattern is
// read-only during matching).
const pcre2_code* Gpt2Pattern() {
  static const pcre2_code* const code = [] {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* compiled = pcre2_compile(
        reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED,
        PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (compiled == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      TRIDENT_CHECK(false) << "GPT-2 pattern does not compile at offset " << offset << ": "
                           << reinterpret_cast<const char*>(message);
    }
    // JIT is an optimisation: without it (unsupported CPU) the interpreter runs.
    pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE);
    return compiled;
  }();
  return code;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

std::vector<absl::string_view> SplitGpt2Words(absl::string_view text) {
  const pcre2_code* pattern = Gpt2Pattern();
  const std::unique_ptr<pcre2_match_data, MatchDataDeleter> match(
      pcre2_match_data_create_from_pattern(pattern, nullptr));
  TRIDENT_CHECK(match != nullptr) << "out of memory for PCRE2 match data";
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::vector<absl::string_view> words;
  size_t position = 0;
  while (position < text.size()) {
    const int result =
        pcre2_match(pattern, subject, text.size(), position, 0, match.get(), nullptr);
    size_t begin = text.size();
    size_t end = text.size();
    if (result >= 0) {
      const PCRE2_SIZE* offsets = pcre2_get_ovector_pointer(match.get());
      begin = offsets[0];
      end = offsets[1];
    } else {
      TRIDENT_CHECK(result == PCRE2_ERROR_NOMATCH) << "pcre2_match failed with code " << result;
    }
    // Every valid character matches some alternative, so what the search
    // skipped is a run of bytes that are not valid UTF-8.
    if (begin > position) words.push_back(text.substr(position, begin - position));
    // No alternative matches the empty string.
    TRIDENT_CHECK(end > begin || begin == text.size()) << "empty GPT-2 word at " << begin;
    if (end > begin) words.push_back(text.substr(begin, end - begin));
    position = end;
  }
  return words;
}

}  // namespace trident::data
