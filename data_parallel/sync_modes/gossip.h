#ifndef TRIDENT_DATA_PARALLEL_SYNC_MODES_GOSSIP_H_
#define TRIDENT_DATA_PARALLEL_SYNC_MODES_GOSSIP_H_

// One round of gossip averaging on a ring of replicas (decentralised SGD,
// e.g. Lian et al. 2017): every member replaces its values by a weighted mean
// of its own and its ring neighbours' values, exchanged point to point, with
// no global collective.
//
// Mixing matrix W (x' = W x, elementwise over the buffer), n = size():
//   n = 1:  W = [1] (nothing moves);
//   n = 2:  W = [[1/2, 1/2], [1/2, 1/2]]: the left and right neighbours are
//           the same replica, counted once, so both end with the exact mean;
//   n >= 3: W_ii = W_i,i-1 = W_i,i+1 = 1/3 (mod n), the rest 0.
// W is symmetric and doubly stochastic, so a round preserves the replicas'
// mean in exact arithmetic. In fp32 each element is summed in double (exact
// for three floats whose exponents differ by < 29, otherwise within 2^-53
// relative) and rounded once, so each new value is within 2^-24 |x'_i| of
// the exact weighted mean and the replicas' mean moves by at most
// 2^-24 max_i |x'_i| per element (tested).
//
// Bytes sent per member and round: 4 d to each distinct neighbour, i.e. 8 d
// for n >= 3 and 4 d for n = 2, for d fp32 values.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"

namespace trident::data_parallel {

// The group ranks whose values `rank` mixes with its own (distinct, not
// `rank`): {} for n = 1, {other} for n = 2, {left, right} for n >= 3.
std::vector<int> GossipNeighbours(int rank, int size);

// The analytic bytes one member sends in a round over `count` fp32 values.
int64_t GossipBytesSent(int size, int64_t count);

// Mixes `values` (this member's, fp32, host memory) with the ring neighbours'
// over `ring` in place. Every member calls it with the same count.
// `scratch` is resized to hold the neighbours' copies (reused across rounds).
absl::Status GossipRound(comm::Communicator& ring, absl::Span<float> values,
                         std::vector<float>& scratch);

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_SYNC_MODES_GOSSIP_H_
