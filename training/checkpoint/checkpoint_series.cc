#include "training/checkpoint/checkpoint_series.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "training/checkpoint/checkpoint_meta.h"

namespace trident::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr char kStepPrefix[] = "step_";
constexpr char kLatest[] = "latest";

std::string StepName(int64_t step) { return absl::StrFormat("%s%08d", kStepPrefix, step); }

// A checkpoint, complete or being written: it holds rank 0's file or a meta file.
bool HoldsCheckpoint(const fs::path& dir) {
  std::error_code error;
  return fs::exists(dir / RankFileName(0), error) || fs::exists(dir / "meta.textproto", error);
}

}  // namespace

std::string StepCheckpointDir(const std::string& root, int64_t step) {
  return (fs::path(root) / StepName(step)).string();
}

absl::Status CreateSaveDirectory(const std::string& root) {
  std::error_code error;
  fs::create_directories(root, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create the save directory ", root, ": ", error.message()));
  }
  return absl::OkStatus();
}

absl::Status SetLatestCheckpoint(const std::string& root, int64_t step) {
  const fs::path link = fs::path(root) / kLatest;
  const fs::path temporary = fs::path(root) / absl::StrCat(".", kLatest, ".", StepName(step));
  std::error_code error;
  fs::remove(temporary, error);
  fs::create_directory_symlink(StepName(step), temporary, error);
  if (!error) fs::rename(temporary, link, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot point ", link.string(), " at ", StepName(step),
                                            ": ", error.message()));
  }
  return absl::OkStatus();
}

std::vector<int64_t> CheckpointSteps(const std::string& root) {
  std::vector<int64_t> steps;
  std::error_code error;
  for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    int64_t step = 0;
    if (name.size() == 13 && absl::StartsWith(name, kStepPrefix) &&
        absl::SimpleAtoi(name.substr(5), &step) && it->is_directory() &&
        HoldsCheckpoint(it->path())) {
      steps.push_back(step);
    }
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

absl::Status PruneCheckpoints(const std::string& root, int keep_last) {
  if (keep_last < 1) {
    return absl::InvalidArgumentError(absl::StrCat("keep_last=", keep_last, " must be >= 1"));
  }
  const std::vector<int64_t> steps = CheckpointSteps(root);
  for (size_t i = 0; i + keep_last < steps.size(); ++i) {
    std::error_code error;
    fs::remove_all(StepCheckpointDir(root, steps[i]), error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot remove the old checkpoint ",
                                              StepCheckpointDir(root, steps[i]), ": ",
                                              error.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveResumeCheckpoint(const std::string& path) {
  if (HoldsCheckpoint(path)) return path;
  std::error_code error;
  const fs::path latest = fs::path(path) / kLatest;
  if (fs::is_symlink(latest, error)) {
    const fs::path target = fs::read_symlink(latest, error);
    const fs::path dir = target.is_absolute() ? target : fs::path(path) / target;
    if (!error && HoldsCheckpoint(dir)) return dir.string();
  }
  return absl::NotFoundError(absl::StrCat(
      "--resume=", path, " is neither a checkpoint (no ", RankFileName(0),
      ") nor a save directory with a 'latest' checkpoint"));
}

bool IsCheckpointDirectory(const std::string& dir) {
  std::error_code error;
  return HoldsCheckpoint(dir) || fs::is_symlink(fs::path(dir) / kLatest, error) ||
         !CheckpointSteps(dir).empty();
}

}  // namespace trident::checkpoint
