#include "topology/layout_names.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "core/schedule_names.h"

namespace trident::topology {
namespace {

// One table per enum keeps the name and its parser in a single place.
template <typename Enum>
using NameTable = std::pair<Enum, absl::string_view>;

// Schedule names are core's (core/schedule_names.h), indexed by the enum.
static_assert(GPIPE == 0 && ONE_F_ONE_B == 1 && INTERLEAVED_1F1B == 2 && ZERO_BUBBLE_H1 == 3 &&
              kPipelineScheduleNames.size() == PipelineSchedule_ARRAYSIZE);

constexpr NameTable<Recompute::Policy> kRecomputeNames[] = {
    {Recompute::NONE, "none"},
    {Recompute::SELECTIVE, "selective"},
    {Recompute::FULL, "full"},
};

constexpr NameTable<GradientCompression::Method> kCompressionNames[] = {
    {GradientCompression::NONE, "none"},
    {GradientCompression::BF16, "bf16"},
    {GradientCompression::TOPK, "topk"},
    {GradientCompression::INT8, "int8"},
    {GradientCompression::FP16, "fp16"},
    {GradientCompression::POWERSGD, "powersgd"},
};

constexpr NameTable<GradientCompression::Scaling> kScalingNames[] = {
    {GradientCompression::DYNAMIC, "dynamic"},
    {GradientCompression::STATIC, "static"},
};

constexpr NameTable<DpAllReduce::Algorithm> kDpAllReduceNames[] = {
    {DpAllReduce::NATIVE, "native"},
    {DpAllReduce::RING, "ring"},
    {DpAllReduce::TREE, "tree"},
};

constexpr NameTable<DpSync::Mode> kDpSyncNames[] = {
    {DpSync::SYNC, "sync"},
    {DpSync::LOCAL_SGD, "local_sgd"},
    {DpSync::GOSSIP, "gossip"},
    {DpSync::PS, "ps"},
};

template <typename Enum>
absl::string_view NameOf(absl::Span<const NameTable<Enum>> table, Enum value) {
  for (const auto& [entry, name] : table) {
    if (entry == value) return name;
  }
  return "unknown";
}

template <typename Enum>
absl::StatusOr<Enum> ParseName(absl::Span<const NameTable<Enum>> table, absl::string_view what,
                               absl::string_view name) {
  for (const auto& [entry, entry_name] : table) {
    if (entry_name == name) return entry;
  }
  std::string valid = absl::StrJoin(table, ", ", [](std::string* out, const NameTable<Enum>& e) {
    absl::StrAppend(out, "\"", e.second, "\"");
  });
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", what, " \"", name, "\" (valid: ", valid, ")"));
}

}  // namespace

absl::string_view ScheduleName(PipelineSchedule schedule) {
  const size_t index = static_cast<size_t>(schedule);
  return index < kPipelineScheduleNames.size() ? kPipelineScheduleNames[index] : "unknown";
}

absl::StatusOr<PipelineSchedule> ParseScheduleName(absl::string_view name) {
  absl::StatusOr<int> index = ParsePipelineScheduleName(name);
  if (!index.ok()) return index.status();
  return static_cast<PipelineSchedule>(*index);
}

absl::string_view RecomputeName(Recompute::Policy policy) {
  return NameOf<Recompute::Policy>(kRecomputeNames, policy);
}

absl::StatusOr<Recompute::Policy> ParseRecomputeName(absl::string_view name) {
  return ParseName<Recompute::Policy>(kRecomputeNames, "recompute policy", name);
}

absl::string_view CompressionName(GradientCompression::Method method) {
  return NameOf<GradientCompression::Method>(kCompressionNames, method);
}

absl::StatusOr<GradientCompression::Method> ParseCompressionName(absl::string_view name) {
  return ParseName<GradientCompression::Method>(kCompressionNames, "gradient compression", name);
}

absl::string_view CompressionScalingName(GradientCompression::Scaling scaling) {
  return NameOf<GradientCompression::Scaling>(kScalingNames, scaling);
}

absl::StatusOr<GradientCompression::Scaling> ParseCompressionScalingName(absl::string_view name) {
  return ParseName<GradientCompression::Scaling>(kScalingNames, "compression scaling", name);
}

absl::string_view DpAllReduceName(DpAllReduce::Algorithm algorithm) {
  return NameOf<DpAllReduce::Algorithm>(kDpAllReduceNames, algorithm);
}

absl::StatusOr<DpAllReduce::Algorithm> ParseDpAllReduceName(absl::string_view name) {
  return ParseName<DpAllReduce::Algorithm>(kDpAllReduceNames, "dp all-reduce algorithm", name);
}

absl::string_view DpSyncName(DpSync::Mode mode) {
  return NameOf<DpSync::Mode>(kDpSyncNames, mode);
}

absl::StatusOr<DpSync::Mode> ParseDpSyncName(absl::string_view name) {
  return ParseName<DpSync::Mode>(kDpSyncNames, "dp sync mode", name);
}

}  // namespace trident::topology
