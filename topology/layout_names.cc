#include "topology/layout_names.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"

namespace trident::topology {
namespace {

// One table per enum keeps the name and its parser in a single place.
template <typename Enum>
using NameTable = std::pair<Enum, absl::string_view>;

constexpr NameTable<PipelineSchedule> kScheduleNames[] = {
    {GPIPE, "gpipe"},
    {ONE_F_ONE_B, "1f1b"},
    {INTERLEAVED_1F1B, "interleaved"},
    {ZERO_BUBBLE_H1, "zb-h1"},
};

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
  return NameOf<PipelineSchedule>(kScheduleNames, schedule);
}

absl::StatusOr<PipelineSchedule> ParseScheduleName(absl::string_view name) {
  return ParseName<PipelineSchedule>(kScheduleNames, "schedule", name);
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

}  // namespace trident::topology
