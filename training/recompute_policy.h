#ifndef TRIDENT_TRAINING_RECOMPUTE_POLICY_H_
#define TRIDENT_TRAINING_RECOMPUTE_POLICY_H_

// The layout's recomputation policy (topology/layout.proto) as the model's
// blocks take it (transformer/block.h): transformer does not depend on
// topology, so the translation lives here, once, for the stage model, the
// memory estimate and the planner.

#include "topology/layout.pb.h"
#include "transformer/block.h"

namespace trident::training {

inline transformer::Recompute BlockRecompute(topology::Recompute::Policy policy) {
  switch (policy) {
    case topology::Recompute::SELECTIVE:
      return transformer::Recompute::kSelective;
    case topology::Recompute::FULL:
      return transformer::Recompute::kFull;
    default:
      return transformer::Recompute::kNone;
  }
}

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_RECOMPUTE_POLICY_H_
