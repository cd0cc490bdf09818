#ifndef TRIDENT_TOPOLOGY_PROCESS_GRID_H_
#define TRIDENT_TOPOLOGY_PROCESS_GRID_H_

// The process grid: maps each world rank to its (dp, pp, tp) coordinates and
// computes the rank lists of every communication group (DESIGN.md rule 5).
// Pure arithmetic on the layout; topology/grid_communicators.h turns the rank
// lists into communicators.
//
// Rank order. `rank_order` is a permutation of "tp", "dp", "pp" joined by '-',
// the first axis varying fastest. With Megatron's "tp-dp-pp":
//   rank = tp + tensor_parallel * (dp + data_parallel * pp).
//
// Groups, each listed as world ranks in the group's own rank order:
//   tp    the ranks sharing one layer's shards: same dp and pp; ordered by tp.
//   pp    one model replica's pipeline: same dp and tp; ordered by stage, so
//         the group rank of a member is its stage.
//   dp    the replicas of one shard: same pp and tp; ordered by dp.
//   mp    model parallel, one whole model replica (tp x pp): same dp; group
//         rank = pp * tensor_parallel + tp (tp fastest).
//   embedding  the first and the last stage of a pipeline (same dp and tp),
//         which hold the input embedding and the output layer and all-reduce
//         the gradients of tied embeddings. One rank when pipeline_parallel is
//         1; the ranks of middle stages belong to no embedding group.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "topology/layout.pb.h"

namespace trident::topology {

// The three axes of the grid.
enum class Axis : uint8_t { kTensor, kPipeline, kData };

// "tp", "pp", "dp".
absl::string_view AxisName(Axis axis);

// Axes from fastest to slowest varying.
using RankOrder = std::array<Axis, 3>;

// Parses a rank order such as "tp-dp-pp". Unknown, repeated or missing axes
// are INVALID_ARGUMENT naming the field and the offending axis.
absl::StatusOr<RankOrder> ParseRankOrder(absl::string_view text);
std::string RankOrderName(const RankOrder& order);

// A rank's position in the grid.
struct Coordinates {
  int dp = 0;
  int pp = 0;
  int tp = 0;

  friend bool operator==(const Coordinates&, const Coordinates&) = default;
};

enum class GroupKind : uint8_t { kTensor, kPipeline, kData, kModelParallel, kEmbedding };
inline constexpr GroupKind kAllGroupKinds[] = {GroupKind::kTensor, GroupKind::kPipeline,
                                               GroupKind::kData, GroupKind::kModelParallel,
                                               GroupKind::kEmbedding};

// "tp", "pp", "dp", "mp", "embedding".
absl::string_view GroupKindName(GroupKind kind);

// The grid-level rules, in this order: tensor_parallel, pipeline_parallel,
// data_parallel and world_size positive; their product equal to world_size;
// rank_order well formed. The first broken rule is returned.
// (ValidateLayout in layout_validation.h checks these and the model rules.)
absl::Status ValidateGridShape(const ParallelLayout& layout, int world_size);

class ProcessGrid {
 public:
  // Fails with the first broken grid-level rule (see ValidateGridShape).
  static absl::StatusOr<ProcessGrid> Create(const ParallelLayout& layout, int world_size);

  const ParallelLayout& layout() const { return layout_; }
  int world_size() const { return world_size_; }
  int tensor_parallel() const { return size_[AxisIndex(Axis::kTensor)]; }
  int pipeline_parallel() const { return size_[AxisIndex(Axis::kPipeline)]; }
  int data_parallel() const { return size_[AxisIndex(Axis::kData)]; }
  const RankOrder& rank_order() const { return order_; }

  // Rank <-> coordinates. Out-of-range arguments are programming errors (CHECK).
  Coordinates CoordinatesOf(int rank) const;
  int RankOf(const Coordinates& coordinates) const;

  // The members of `rank`'s group of `kind`, as world ranks in group order.
  // For a middle pipeline stage, EmbeddingGroup lists its pipeline's first and
  // last stage, which do not include `rank` (see IsMember).
  std::vector<int> Group(GroupKind kind, int rank) const;
  std::vector<int> TensorGroup(int rank) const { return Group(GroupKind::kTensor, rank); }
  std::vector<int> PipelineGroup(int rank) const { return Group(GroupKind::kPipeline, rank); }
  std::vector<int> DataGroup(int rank) const { return Group(GroupKind::kData, rank); }
  std::vector<int> ModelParallelGroup(int rank) const {
    return Group(GroupKind::kModelParallel, rank);
  }
  std::vector<int> EmbeddingGroup(int rank) const { return Group(GroupKind::kEmbedding, rank); }

  // Whether `rank` is a member of its group of `kind`: always, except the
  // embedding group of a middle pipeline stage.
  bool IsMember(GroupKind kind, int rank) const;
  // `rank`'s position in its group of `kind`, or -1 when it is not a member.
  int IndexInGroup(GroupKind kind, int rank) const;

  // Every group of `kind`, ordered by the world rank of its first member.
  // Together they hold every rank exactly once (embedding: every first- and
  // last-stage rank).
  std::vector<std::vector<int>> AllGroupsOf(GroupKind kind) const;

  // The name of `rank`'s group of `kind`, given by the coordinates its members
  // share, e.g. "tp[dp=0,pp=1]", "pp[dp=1,tp=0]", "dp[pp=0,tp=1]", "mp[dp=0]",
  // "embedding[dp=0,tp=1]". Used to name communicators.
  std::string GroupName(GroupKind kind, int rank) const;

  // Pipeline neighbours in the same pipeline, as a ring: the last stage's next
  // is the first stage (interleaved schedules pass chunk boundaries around).
  // With one stage both are the rank itself.
  int NextStageRank(int rank) const;
  int PrevStageRank(int rank) const;
  bool IsFirstStage(int rank) const { return CoordinatesOf(rank).pp == 0; }
  bool IsLastStage(int rank) const { return CoordinatesOf(rank).pp == pipeline_parallel() - 1; }

  // A human-readable description printed at the start of every job: the layout
  // (grid, schedule, batch sizes, memory options), the group counts, and a
  // table of ranks with their coordinates and group members. Rank lists are
  // abbreviated ("0-7", "0,4,..,28"). At most `max_rows` ranks are listed.
  std::string Describe(int max_rows = 64) const;

 private:
  ProcessGrid(const ParallelLayout& layout, int world_size, const RankOrder& order);

  static int AxisIndex(Axis axis) { return static_cast<int>(axis); }
  int CoordinateOf(const Coordinates& c, Axis axis) const;
  void CheckRank(int rank) const;

  ParallelLayout layout_;
  int world_size_;
  RankOrder order_;
  std::array<int, 3> size_;    // Indexed by Axis.
  std::array<int, 3> stride_;  // Rank distance between neighbours on each axis.
};

// Compact text for a rank list: consecutive runs become "a-b", and lists of
// more than four runs keep the first two and the last ("0,4,..,28").
std::string FormatRankList(const std::vector<int>& ranks);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_PROCESS_GRID_H_
