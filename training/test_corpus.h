#ifndef TRIDENT_TRAINING_TEST_CORPUS_H_
#define TRIDENT_TRAINING_TEST_CORPUS_H_

// Token files for tests (the Brown corpus is not available inside a test's
// sandbox): a tiny repeated text for the trainer's mechanics, and a generated
// English-like text for tests that train the default model and compare loss
// curves (precisions, devices).

#include <string>

namespace trident::training::testing {

// A tiny byte corpus (four English sentences repeated 40 times, each repeat
// shifted by one byte value), written as DIR/train.bin and DIR/val.bin (its
// first 4000 tokens): for tests of the trainer's mechanics; returns DIR.
std::string WriteCorpus(const std::string& dir);

// Writes DIR/train.bin (about 64 k byte tokens: sentences drawn by a fixed
// linear congruential generator from a small vocabulary of words, enough for
// 200 steps of the default model without memorising) and DIR/val.bin (its
// first 8192 tokens); returns DIR.
std::string WriteEnglishLikeTokenFiles(const std::string& dir);

}  // namespace trident::training::testing

#endif  // TRIDENT_TRAINING_TEST_CORPUS_H_
