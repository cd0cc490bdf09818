#include "core/schedule_names.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trident {

absl::StatusOr<int> ParsePipelineScheduleName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (size_t i = 0; i < kPipelineScheduleNames.size(); ++i) {
    if (lower == kPipelineScheduleNames[i]) return static_cast<int>(i);
  }
  const std::string valid =
      absl::StrJoin(kPipelineScheduleNames, ", ", [](std::string* out, absl::string_view n) {
        absl::StrAppend(out, "\"", n, "\"");
      });
  return absl::InvalidArgumentError(
      absl::StrCat("unknown schedule \"", name, "\" (valid: ", valid, ")"));
}

}  // namespace trident
