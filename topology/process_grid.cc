#include "topology/process_grid.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "core/status_macros.h"
#include "topology/layout_names.h"

namespace trident::topology {
namespace {

constexpr Axis kAxes[] = {Axis::kTensor, Axis::kPipeline, Axis::kData};

constexpr absl::string_view kRankOrderRule =
    "each of tp, dp, pp exactly once, joined by '-', fastest varying first, e.g. \"tp-dp-pp\"";

absl::Status RankOrderError(absl::string_view text, absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("rank_order=\"", text, "\": ", problem, " (", kRankOrderRule, ")"));
}

absl::Status CheckPositive(absl::string_view field, int64_t value) {
  if (value >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, "=", value, " must be positive"));
}

}  // namespace

absl::string_view AxisName(Axis axis) {
  switch (axis) {
    case Axis::kTensor:
      return "tp";
    case Axis::kPipeline:
      return "pp";
    case Axis::kData:
      return "dp";
  }
  return "unknown";
}

absl::StatusOr<RankOrder> ParseRankOrder(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, '-');
  RankOrder order{};
  std::array<bool, 3> seen{};
  int count = 0;
  for (absl::string_view part : parts) {
    const Axis* axis = std::find_if(std::begin(kAxes), std::end(kAxes),
                                    [&](Axis a) { return AxisName(a) == part; });
    if (axis == std::end(kAxes)) {
      return RankOrderError(text, absl::StrCat("unknown axis \"", part, "\""));
    }
    if (seen[static_cast<int>(*axis)]) {
      return RankOrderError(text, absl::StrCat("axis \"", part, "\" appears more than once"));
    }
    seen[static_cast<int>(*axis)] = true;
    order[count++] = *axis;
  }
  for (Axis axis : kAxes) {
    if (!seen[static_cast<int>(axis)]) {
      return RankOrderError(text, absl::StrCat("axis \"", AxisName(axis), "\" is missing"));
    }
  }
  return order;
}

std::string RankOrderName(const RankOrder& order) {
  return absl::StrJoin(order, "-",
                       [](std::string* out, Axis axis) { absl::StrAppend(out, AxisName(axis)); });
}

absl::string_view GroupKindName(GroupKind kind) {
  switch (kind) {
    case GroupKind::kTensor:
      return "tp";
    case GroupKind::kPipeline:
      return "pp";
    case GroupKind::kData:
      return "dp";
    case GroupKind::kModelParallel:
      return "mp";
    case GroupKind::kEmbedding:
      return "embedding";
  }
  return "unknown";
}

absl::Status ValidateGridShape(const ParallelLayout& layout, int world_size) {
  RETURN_IF_ERROR(CheckPositive("tensor_parallel", layout.tensor_parallel()));
  RETURN_IF_ERROR(CheckPositive("pipeline_parallel", layout.pipeline_parallel()));
  RETURN_IF_ERROR(CheckPositive("data_parallel", layout.data_parallel()));
  if (world_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("world size ", world_size, " must be positive"));
  }
  // In 64 bits: three int32 factors may overflow int.
  const int64_t product = int64_t{layout.tensor_parallel()} * layout.pipeline_parallel() *
                          layout.data_parallel();
  if (product != world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor_parallel=", layout.tensor_parallel(), " x pipeline_parallel=",
        layout.pipeline_parallel(), " x data_parallel=", layout.data_parallel(), " = ", product,
        " must equal the world size ", world_size, " (every rank holds one grid position)"));
  }
  return ParseRankOrder(layout.rank_order()).status();
}

absl::StatusOr<ProcessGrid> ProcessGrid::Create(const ParallelLayout& layout, int world_size) {
  RETURN_IF_ERROR(ValidateGridShape(layout, world_size));
  ASSIGN_OR_RETURN(RankOrder order, ParseRankOrder(layout.rank_order()));
  return ProcessGrid(layout, world_size, order);
}

ProcessGrid::ProcessGrid(const ParallelLayout& layout, int world_size, const RankOrder& order)
    : layout_(layout), world_size_(world_size), order_(order) {
  size_[AxisIndex(Axis::kTensor)] = layout.tensor_parallel();
  size_[AxisIndex(Axis::kPipeline)] = layout.pipeline_parallel();
  size_[AxisIndex(Axis::kData)] = layout.data_parallel();
  int stride = 1;
  for (Axis axis : order_) {
    stride_[AxisIndex(axis)] = stride;
    stride *= size_[AxisIndex(axis)];
  }
}

void ProcessGrid::CheckRank(int rank) const {
  TRIDENT_CHECK(rank >= 0 && rank < world_size_)
      << "rank " << rank << " outside world of " << world_size_;
}

int ProcessGrid::CoordinateOf(const Coordinates& c, Axis axis) const {
  switch (axis) {
    case Axis::kTensor:
      return c.tp;
    case Axis::kPipeline:
      return c.pp;
    case Axis::kData:
      return c.dp;
  }
  return 0;
}

Coordinates ProcessGrid::CoordinatesOf(int rank) const {
  CheckRank(rank);
  auto along = [&](Axis axis) {
    return (rank / stride_[AxisIndex(axis)]) % size_[AxisIndex(axis)];
  };
  return Coordinates{.dp = along(Axis::kData), .pp = along(Axis::kPipeline),
                     .tp = along(Axis::kTensor)};
}

int ProcessGrid::RankOf(const Coordinates& coordinates) const {
  int rank = 0;
  for (Axis axis : kAxes) {
    const int value = CoordinateOf(coordinates, axis);
    TRIDENT_CHECK(value >= 0 && value < size_[AxisIndex(axis)])
        << AxisName(axis) << " coordinate " << value << " outside 0.."
        << size_[AxisIndex(axis)] - 1;
    rank += value * stride_[AxisIndex(axis)];
  }
  return rank;
}

std::vector<int> ProcessGrid::Group(GroupKind kind, int rank) const {
  Coordinates c = CoordinatesOf(rank);
  std::vector<int> members;
  switch (kind) {
    case GroupKind::kTensor:
      for (c.tp = 0; c.tp < tensor_parallel(); ++c.tp) members.push_back(RankOf(c));
      break;
    case GroupKind::kPipeline:
      for (c.pp = 0; c.pp < pipeline_parallel(); ++c.pp) members.push_back(RankOf(c));
      break;
    case GroupKind::kData:
      for (c.dp = 0; c.dp < data_parallel(); ++c.dp) members.push_back(RankOf(c));
      break;
    case GroupKind::kModelParallel:
      for (c.pp = 0; c.pp < pipeline_parallel(); ++c.pp) {
        for (c.tp = 0; c.tp < tensor_parallel(); ++c.tp) members.push_back(RankOf(c));
      }
      break;
    case GroupKind::kEmbedding:
      c.pp = 0;
      members.push_back(RankOf(c));
      if (pipeline_parallel() > 1) {
        c.pp = pipeline_parallel() - 1;
        members.push_back(RankOf(c));
      }
      break;
  }
  return members;
}

bool ProcessGrid::IsMember(GroupKind kind, int rank) const {
  return IndexInGroup(kind, rank) >= 0;
}

int ProcessGrid::IndexInGroup(GroupKind kind, int rank) const {
  const Coordinates c = CoordinatesOf(rank);
  switch (kind) {
    case GroupKind::kTensor:
      return c.tp;
    case GroupKind::kPipeline:
      return c.pp;
    case GroupKind::kData:
      return c.dp;
    case GroupKind::kModelParallel:
      return c.pp * tensor_parallel() + c.tp;
    case GroupKind::kEmbedding:
      if (c.pp == 0) return 0;
      if (c.pp == pipeline_parallel() - 1) return 1;
      return -1;
  }
  return -1;
}

std::vector<std::vector<int>> ProcessGrid::AllGroupsOf(GroupKind kind) const {
  // A group is listed when its first member comes up; ranks ascend, so the
  // groups come out ordered by their first member.
  std::vector<std::vector<int>> groups;
  for (int rank = 0; rank < world_size_; ++rank) {
    if (IndexInGroup(kind, rank) == 0) groups.push_back(Group(kind, rank));
  }
  return groups;
}

std::string ProcessGrid::GroupName(GroupKind kind, int rank) const {
  const Coordinates c = CoordinatesOf(rank);
  switch (kind) {
    case GroupKind::kTensor:
      return absl::StrFormat("tp[dp=%d,pp=%d]", c.dp, c.pp);
    case GroupKind::kPipeline:
      return absl::StrFormat("pp[dp=%d,tp=%d]", c.dp, c.tp);
    case GroupKind::kData:
      return absl::StrFormat("dp[pp=%d,tp=%d]", c.pp, c.tp);
    case GroupKind::kModelParallel:
      return absl::StrFormat("mp[dp=%d]", c.dp);
    case GroupKind::kEmbedding:
      return absl::StrFormat("embedding[dp=%d,tp=%d]", c.dp, c.tp);
  }
  return "unknown";
}

int ProcessGrid::NextStageRank(int rank) const {
  Coordinates c = CoordinatesOf(rank);
  c.pp = (c.pp + 1) % pipeline_parallel();
  return RankOf(c);
}

int ProcessGrid::PrevStageRank(int rank) const {
  Coordinates c = CoordinatesOf(rank);
  c.pp = (c.pp + pipeline_parallel() - 1) % pipeline_parallel();
  return RankOf(c);
}

std::string FormatRankList(const std::vector<int>& ranks) {
  // Runs of consecutive ranks.
  std::vector<std::string> runs;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    runs.push_back(j == i ? absl::StrCat(ranks[i]) : absl::StrCat(ranks[i], "-", ranks[j]));
    i = j + 1;
  }
  if (runs.size() > 4) {
    return absl::StrCat(runs[0], ",", runs[1], ",..,", runs.back());
  }
  return absl::StrJoin(runs, ",");
}

namespace {

// Plain-text table with columns sized to their widest cell; numeric columns
// are right-aligned.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header, std::vector<bool> right_aligned)
      : right_aligned_(std::move(right_aligned)) {
    rows_.push_back(std::move(header));
  }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string Render(absl::string_view indent) const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line(indent);
      for (size_t i = 0; i < row.size(); ++i) {
        if (i > 0) line += "  ";
        const int w = static_cast<int>(width[i]);
        line += right_aligned_[i] ? absl::StrFormat("%*s", w, row[i])
                                  : absl::StrFormat("%-*s", w, row[i]);
      }
      // Left-aligned last columns leave trailing blanks.
      line.erase(line.find_last_not_of(' ') + 1);
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_aligned_;
};

std::string Plural(int64_t n, absl::string_view singular, absl::string_view plural) {
  return absl::StrCat(n, " ", n == 1 ? singular : plural);
}

}  // namespace

std::string ProcessGrid::Describe(int max_rows) const {
  const ParallelLayout& l = layout_;
  std::string out;
  absl::StrAppend(&out, "Process grid: tp ", tensor_parallel(), " x pp ", pipeline_parallel(),
                  " x dp ", data_parallel(), " = ", Plural(world_size_, "rank", "ranks"),
                  ", rank order ", RankOrderName(order_), " (", AxisName(order_[0]),
                  " varies fastest)\n");

  std::string schedule(ScheduleName(l.schedule()));
  if (l.virtual_pipeline_stages() > 1) {
    absl::StrAppend(&schedule, " with ", l.virtual_pipeline_stages(), " chunks per stage");
  }
  const int64_t global_batch =
      int64_t{l.micro_batch_size()} * l.num_micro_batches() * data_parallel();
  absl::StrAppend(&out, "  schedule ", schedule, "; global batch ", global_batch,
                  " = micro-batch size ", l.micro_batch_size(), " x ",
                  Plural(l.num_micro_batches(), "micro-batch", "micro-batches"), " x dp ",
                  data_parallel(), "\n");
  if (l.layers_per_stage_size() > 0) {
    absl::StrAppend(&out, "  layers per stage chunk: ", absl::StrJoin(l.layers_per_stage(), ","),
                    "\n");
  }
  std::string compression(CompressionName(l.gradient_compression()));
  if (l.gradient_compression() == GradientCompression::TOPK) {
    absl::StrAppend(&compression, " (ratio ", l.topk_ratio(), ")");
  }
  absl::StrAppend(&out, "  sequence parallel ", l.sequence_parallel() ? "on" : "off",
                  ", ZeRO stage ", l.zero_stage(), ", recompute ", RecomputeName(l.recompute()),
                  ", gradient compression ", compression, ", grad reduce ",
                  l.overlap_grad_reduce() ? "overlapped with backward" : "after backward",
                  " in ", l.grad_bucket_mb(), " MiB buckets",
                  "\n");

  std::vector<std::string> counts;
  for (GroupKind kind : kAllGroupKinds) {
    const std::vector<std::vector<int>> groups = AllGroupsOf(kind);
    counts.push_back(absl::StrCat(groups.size(), " ", GroupKindName(kind), " of ",
                                  groups.front().size()));
  }
  absl::StrAppend(&out, "  groups: ", absl::StrJoin(counts, ", "), "\n");

  TextTable table({"rank", "dp", "pp", "tp", "tp group", "pp group", "dp group", "mp group",
                   "embedding", "prev", "next"},
                  {true, true, true, true, false, false, false, false, false, true, true});
  const int rows = std::min(world_size_, std::max(max_rows, 0));
  for (int rank = 0; rank < rows; ++rank) {
    const Coordinates c = CoordinatesOf(rank);
    table.AddRow({absl::StrCat(rank), absl::StrCat(c.dp), absl::StrCat(c.pp), absl::StrCat(c.tp),
                  FormatRankList(TensorGroup(rank)), FormatRankList(PipelineGroup(rank)),
                  FormatRankList(DataGroup(rank)), FormatRankList(ModelParallelGroup(rank)),
                  IsMember(GroupKind::kEmbedding, rank) ? FormatRankList(EmbeddingGroup(rank))
                                                        : "-",
                  absl::StrCat(PrevStageRank(rank)), absl::StrCat(NextStageRank(rank))});
  }
  absl::StrAppend(&out, table.Render("  "));
  if (rows < world_size_) {
    absl::StrAppend(&out, "  ... ", Plural(world_size_ - rows, "more rank", "more ranks"),
                    " (same pattern)\n");
  }
  return out;
}

}  // namespace trident::topology
