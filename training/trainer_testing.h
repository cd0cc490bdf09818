#ifndef TRIDENT_TRAINING_TRAINER_TESTING_H_
#define TRIDENT_TRAINING_TRAINER_TESTING_H_

// What trainer tests share: a tiny corpus, a tiny job over it, and a run that
// must succeed.

#include <sstream>
#include <string>

#include "training/trainer.h"

namespace trident::training::testing {

// A small English-like byte corpus, written as `dir`/train.bin and val.bin;
// returns `dir`.
std::string WriteCorpus(const std::string& dir);

// A 2-layer, hidden-32 model on that corpus: 8 steps of 4 sequences of 32
// tokens, serial layout, validation every 4 steps.
TrainOptions TinyOptions(const std::string& data_dir);

// Where tests send progress lines they do not read.
std::ostringstream& Sink();

// Train(options) with the log in Sink(); aborts the test binary on error.
TrainResult MustTrain(TrainOptions options);

}  // namespace trident::training::testing

#endif  // TRIDENT_TRAINING_TRAINER_TESTING_H_
