#ifndef TRIDENT_TRAINING_TRAINER_TESTING_H_
#define TRIDENT_TRAINING_TRAINER_TESTING_H_

// What trainer tests share: a tiny job over test_corpus.h's WriteCorpus, and a
// run that must succeed.

#include <sstream>
#include <string>

#include "training/test_corpus.h"
#include "training/trainer.h"

namespace trident::training::testing {


// A 2-layer, hidden-32 model on that corpus: 8 steps of 4 sequences of 32
// tokens, serial layout, validation every 4 steps.
TrainOptions TinyOptions(const std::string& data_dir);

// The embedded default job (`DefaultTrainConfig`) on DIR/train.bin and
// DIR/val.bin (e.g. WriteEnglishLikeTokenFiles'), `steps` steps, no
// evaluation; with `serial`, its global batch as one micro-batch of 8 on the
// serial layout (tp = pp = dp = 1).
TrainOptions DefaultJob(const std::string& data_dir, int steps, bool serial);

// Where tests send progress lines they do not read.
std::ostringstream& Sink();

// Train(options) with the log in Sink(); aborts the test binary on error.
TrainResult MustTrain(TrainOptions options);

}  // namespace trident::training::testing

#endif  // TRIDENT_TRAINING_TRAINER_TESTING_H_
