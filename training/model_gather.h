#ifndef TRIDENT_TRAINING_MODEL_GATHER_H_
#define TRIDENT_TRAINING_MODEL_GATHER_H_

// The serial model's tensors, reassembled from every tensor-parallel shard and
// every pipeline stage: for exports, and for the tests that compare a layout's
// parameters and gradients with the serial run's.

#include <vector>

#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "core/exec_context.h"
#include "tensor_parallel/tp_group.h"
#include "training/export.h"
#include "training/stage_model.h"

namespace trident::training {

// Collective over one data-parallel replica's tp and pp groups (every rank of
// the replica calls it; `pp` may be null with one stage): each stage gathers
// its chunks' tensors over tp (GatherSerialTensors), then every stage's tp
// rank 0 sends them to stage 0. Returns, on stage 0's tp rank 0, every
// parameter's value (or gradient) in model order, the vocabulary padding cut
// to `vocab_size` rows and the head's copy of the tied embedding left out (it
// equals the embedding); an empty list on the other ranks.
absl::StatusOr<std::vector<NamedTensor>> GatherModelTensors(const ExecContext& ctx,
                                                            StageModel& model,
                                                            const tp::TpGroup& tp,
                                                            comm::Communicator* pp,
                                                            int64_t vocab_size, bool gradients);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_MODEL_GATHER_H_
