#ifndef TRIDENT_TRAINING_SYNTHETIC_BATCH_H_
#define TRIDENT_TRAINING_SYNTHETIC_BATCH_H_

// Token batches that need no data file, for the profiler, benchmarks and the
// layout-equivalence harness. Like the real loader they depend only on (seed,
// step, global row, position), never on the layout, so any layout can take
// its replica's rows and train the same model as the serial run.
//
// Inputs are uniform over the vocabulary; each target is a fixed function of
// its input token ((5 x input + 3) mod vocab), so a model trained on them
// learns and its loss falls below the uniform ln(vocab).

#include <cstdint>

#include "core/tensor.h"
#include "training/data/loader.h"

namespace trident::training {

// Rows `rows` of step `step`'s global batch: `inputs` and `targets` become
// [rows.count, seq] int32 tensors.
void SyntheticRows(uint64_t seed, int64_t step, data::RowRange rows, int64_t seq, int64_t vocab,
                   Tensor* inputs, Tensor* targets);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_SYNTHETIC_BATCH_H_
