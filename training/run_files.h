#ifndef TRIDENT_TRAINING_RUN_FILES_H_
#define TRIDENT_TRAINING_RUN_FILES_H_

// The files a training run reads and writes, checked before the first step
// (DESIGN.md, failure model): a run that cannot save its work is refused at
// start-up, never after hours of training, and nothing a user wrote is
// overwritten or destroyed.
//
// Rules, each failing with INVALID_ARGUMENT (FAILED_PRECONDITION for a full
// disk) that names the flag, the path and the rule:
//   1. No output equals another output, equals an input or lies inside an
//      input directory, and no input lies inside an output directory (a
//      --metrics_out naming the train.bin in use would truncate it).
//   2. A file output (--metrics_out, --export_safetensors) is not a
//      directory; the checkpoint directory (--save) is not a file.
//   3. Nothing that exists is replaced without --overwrite, except what a
//      resumed run continues: its metrics file (appended to) and its save
//      directory (--resume inside --save). Even with --overwrite, --save
//      writes only into a save directory of checkpoints or an empty one.
//   4. The parent directory exists or can be created, and a file can be
//      created in it (probed with a temporary file, which also catches
//      read-only filesystems and /proc, where root passes access()).
//   5. The checkpoint's filesystem has room for one checkpoint
//      (`checkpoint_bytes`, an estimate from the parameter and optimizer
//      state bytes) plus the export.
//
// Paths are compared after resolving symbolic links of the parts that exist
// (std::filesystem::weakly_canonical).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trident::training {

struct RunFiles {
  // Every input: token files, the config file, the resume checkpoint.
  std::vector<std::string> inputs;
  std::string metrics;      // --metrics_out; empty: none
  std::string save;         // --save; empty: none
  std::string export_path;  // --export_safetensors; empty: none
  std::string resume;       // --resume; empty: a fresh run
  bool overwrite = false;   // --overwrite
  int64_t checkpoint_bytes = 0;
  int64_t export_bytes = 0;
};

// Rule 1 alone for one output of another tool (e.g. //tools:bubble_profile's
// --out_dir, a directory when `is_directory`): INVALID_ARGUMENT naming `flag`
// when `path` equals or lies inside an input, or holds one.
absl::Status CheckOutputSparesInputs(const char* flag, const std::string& path,
                                     bool is_directory, const std::vector<std::string>& inputs);

// The rules above. Creates missing parent directories of the outputs (they
// are needed anyway); writes nothing else.
absl::Status CheckRunFiles(const RunFiles& files);

// "{run}" in an output path stands for the run's own directory, so that a
// run never replaces the previous one's files: //tools:train's defaults are
// out/train/{run}/metrics.jsonl and out/train/{run}/checkpoint.
inline constexpr char kRunPlaceholder[] = "{run}";

// Replaces {run} in every non-empty path of `paths` with one new run id, the
// UTC time "20261206-125300" (with "-2", "-3", ... when that directory exists
// already), creates the run directory and points a `latest` symbolic link
// next to it at it (replaced atomically). Paths without {run} are unchanged;
// returns the run directory, or "" when no path used {run}.
absl::StatusOr<std::string> ExpandRunDirectory(std::vector<std::string*> paths);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_RUN_FILES_H_
