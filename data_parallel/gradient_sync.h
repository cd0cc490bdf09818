#ifndef TRIDENT_DATA_PARALLEL_GRADIENT_SYNC_H_
#define TRIDENT_DATA_PARALLEL_GRADIENT_SYNC_H_

// Data-parallel gradient synchronisation, the plain form: after the backward
// pass every replica sums its gradients with the other replicas', one
// all-reduce per parameter. The loss is already scaled by 1 / (tokens of the
// global batch), so the sum is the global mean gradient and every replica then
// takes the same optimizer step.
//
// Bucketing, overlap with the backward pass, ZeRO sharding and compression
// build on the same contract (a ParameterList and the dp communicator).

#include "absl/status/status.h"
#include "core/comm/communicator.h"
#include "core/parameter.h"

namespace trident::data_parallel {

// Sums every parameter's gradient over `dp` (null or size 1: nothing to do).
absl::Status AllReduceGradients(const ParameterList& params, comm::Communicator* dp);

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_GRADIENT_SYNC_H_
