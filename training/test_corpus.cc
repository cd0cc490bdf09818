#include "training/test_corpus.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"
#include "training/data/token_file.h"

namespace trident::training::testing {

std::string WriteCorpus(const std::string& dir) {
  const std::string text =
      "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins "
      "with a single step. To be or not to be, that is the question. All that glitters is "
      "not gold. ";
  std::vector<int32_t> tokens;
  for (int repeat = 0; repeat < 40; ++repeat) {
    for (unsigned char c : text) tokens.push_back((c + repeat) % 256);
  }
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/train.bin", 256, tokens));
  tokens.resize(4000);
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/val.bin", 256, tokens));
  return dir;
}


std::string WriteEnglishLikeTokenFiles(const std::string& dir) {
  const std::vector<std::string> words = {
      "the",   "of",    "and",  "to",     "a",      "in",    "that",  "is",    "was",
      "he",    "for",   "it",   "with",   "as",     "his",   "on",    "be",    "at",
      "by",    "had",   "not",  "are",    "but",    "from",  "or",    "have",  "an",
      "they",  "which", "one",  "you",    "were",   "her",   "all",   "she",   "there",
      "would", "their", "we",   "him",    "been",   "has",   "when",  "who",   "will",
      "more",  "no",    "if",   "out",    "so",     "said",  "what",  "up",    "its",
      "about", "into",  "than", "them",   "can",    "only",  "other", "new",   "some",
      "could", "time",  "these", "two",   "may",    "then",  "do",    "first", "any",
      "my",    "now",   "such", "like",   "our",    "over",  "man",   "me",    "even"};
  std::vector<int32_t> tokens;
  uint64_t state = 20261206;
  const auto next = [&state](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  while (tokens.size() < 64000) {
    const int length = 5 + static_cast<int>(next(10));
    for (int w = 0; w < length; ++w) {
      std::string word = words[next(words.size()) % (1 + next(words.size()))];
      if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      for (unsigned char c : word) tokens.push_back(c);
      tokens.push_back(w + 1 == length ? '.' : ' ');
    }
    tokens.push_back(' ');
  }
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/train.bin", 256, tokens));
  tokens.resize(8192);
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/val.bin", 256, tokens));
  return dir;
}

}  // namespace trident::training::testing
