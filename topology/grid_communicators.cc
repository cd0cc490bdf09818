#include "topology/grid_communicators.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace trident::topology {

comm::Communicator* GridCommunicators::Get(GroupKind kind) const {
  switch (kind) {
    case GroupKind::kTensor:
      return tp.get();
    case GroupKind::kPipeline:
      return pp.get();
    case GroupKind::kData:
      return dp.get();
    case GroupKind::kModelParallel:
      return model_parallel.get();
    case GroupKind::kEmbedding:
      return embedding.get();
  }
  return nullptr;
}

absl::StatusOr<GridCommunicators> BuildGridCommunicators(const ProcessGrid& grid,
                                                         comm::Communicator& world) {
  if (world.size() != grid.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "communicator ", world.name(), " has ", world.size(), " ranks but the process grid has ",
        grid.world_size(), " (tp ", grid.tensor_parallel(), " x pp ", grid.pipeline_parallel(),
        " x dp ", grid.data_parallel(), ")"));
  }
  const int rank = world.rank();
  GridCommunicators comms;
  // kAllGroupKinds is the creation order every rank follows.
  for (GroupKind kind : kAllGroupKinds) {
    if (!grid.IsMember(kind, rank)) continue;
    const std::vector<int> members = grid.Group(kind, rank);
    const std::string name = grid.GroupName(kind, rank);
    absl::StatusOr<std::unique_ptr<comm::Communicator>> group = world.CreateGroup(members, name);
    if (!group.ok()) {
      return absl::Status(group.status().code(),
                          absl::StrCat("creating ", name, ": ", group.status().message()));
    }
    switch (kind) {
      case GroupKind::kTensor:
        comms.tp = *std::move(group);
        break;
      case GroupKind::kPipeline:
        comms.pp = *std::move(group);
        break;
      case GroupKind::kData:
        comms.dp = *std::move(group);
        break;
      case GroupKind::kModelParallel:
        comms.model_parallel = *std::move(group);
        break;
      case GroupKind::kEmbedding:
        comms.embedding = *std::move(group);
        break;
    }
  }
  return comms;
}

}  // namespace trident::topology
