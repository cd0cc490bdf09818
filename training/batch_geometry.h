#ifndef TRIDENT_TRAINING_BATCH_GEOMETRY_H_
#define TRIDENT_TRAINING_BATCH_GEOMETRY_H_

// The shape of one training step's data, computed once from the layout and
// used by everything that slices, counts or reports it (the trainer, the
// evaluation, the profiler, the equivalence harness):
//
//   global batch  = data_parallel replicas x micro_batches x micro_batch_size rows
//   replica d     = rows [d x replica_rows, (d + 1) x replica_rows)
//   micro-batch i = rows [i x micro_batch_size, ...) of its replica's rows
//
// every row holding seq_length input tokens (and as many targets). The global
// batch is the same for every layout of the same global_batch_size (DESIGN.md
// rule 2), so dp only decides who computes which rows.

#include <cstdint>

#include "topology/layout.pb.h"
#include "training/data/loader.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct BatchGeometry {
  int64_t micro_batch_size = 1;
  int64_t micro_batches = 1;
  int64_t data_parallel = 1;
  int64_t seq_length = 1;

  // From a validated config (after topology::DeriveMicroBatches).
  static BatchGeometry Of(const TrainConfig& config);

  // Rows (sequences) one replica computes per step.
  int64_t replica_rows() const { return micro_batch_size * micro_batches; }
  // Rows of the global batch.
  int64_t global_rows() const { return replica_rows() * data_parallel; }
  // Loss tokens of the global batch: every target counts, so gradients are
  // the mean over exactly this many tokens whatever the layout.
  int64_t tokens_per_step() const { return global_rows() * seq_length; }
  // Replica `dp_rank`'s rows of global batch number `batch` (0 for a training
  // step; evaluation walks several global batches of windows).
  data::RowRange ReplicaRows(int dp_rank, int64_t batch = 0) const {
    return data::RowRange{batch * global_rows() + dp_rank * replica_rows(), replica_rows()};
  }
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_BATCH_GEOMETRY_H_
