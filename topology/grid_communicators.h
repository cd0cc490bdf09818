#ifndef TRIDENT_TOPOLOGY_GRID_COMMUNICATORS_H_
#define TRIDENT_TOPOLOGY_GRID_COMMUNICATORS_H_

// Turns the process grid's rank lists into communicators for one rank
// (DESIGN.md rule 5: communicators are objects made by the grid).

#include <memory>

#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "topology/process_grid.h"

namespace trident::topology {

// This rank's communicator in each group. Each is named by
// ProcessGrid::GroupName (e.g. "tp[dp=0,pp=1]") and ranks its members in the
// grid's group order (a pp communicator's rank is the stage).
struct GridCommunicators {
  std::unique_ptr<comm::Communicator> tp;
  std::unique_ptr<comm::Communicator> pp;
  std::unique_ptr<comm::Communicator> dp;
  std::unique_ptr<comm::Communicator> model_parallel;
  // Null on middle pipeline stages, which belong to no embedding group.
  std::unique_ptr<comm::Communicator> embedding;

  // The communicator of `kind` (may be null for kEmbedding).
  comm::Communicator* Get(GroupKind kind) const;
};

// Creates the calling rank's groups from `world`, whose rank and size must be
// the grid's world rank and world size. Every rank calls it (collectively):
// groups are created in the fixed order tp, pp, dp, model-parallel,
// embedding, and each CreateGroup is called only by that group's members, as
// the Communicator contract requires. Errors: INVALID_ARGUMENT when world's
// size differs from the grid's, or the backend's CreateGroup error prefixed
// with the group's name.
absl::StatusOr<GridCommunicators> BuildGridCommunicators(const ProcessGrid& grid,
                                                         comm::Communicator& world);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_GRID_COMMUNICATORS_H_
