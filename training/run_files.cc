#include "training/run_files.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "training/checkpoint/checkpoint_series.h"

namespace trident::training {
namespace {

namespace fs = std::filesystem;

struct Output {
  const char* flag;
  std::string path;
  bool is_directory;
};

fs::path Canonical(const std::string& path) {
  std::error_code error;
  fs::path canonical = fs::weakly_canonical(fs::absolute(path), error);
  return error ? fs::absolute(path).lexically_normal() : canonical;
}

// `inner` equals `outer` or lies below it.
bool Within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

std::string Named(const Output& out) { return absl::StrCat(out.flag, "=", out.path); }

absl::Status CheckNoAliasing(const std::vector<Output>& outputs,
                             const std::vector<std::string>& inputs) {
  for (size_t a = 0; a < outputs.size(); ++a) {
    const fs::path out = Canonical(outputs[a].path);
    for (size_t b = a + 1; b < outputs.size(); ++b) {
      const fs::path other = Canonical(outputs[b].path);
      if (Within(out, other) || Within(other, out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Named(outputs[a]), " and ", Named(outputs[b]),
            " overlap; every output needs a path of its own"));
      }
    }
    for (const std::string& input : inputs) {
      const fs::path in = Canonical(input);
      if (Within(out, in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Named(outputs[a]), " is or lies inside the input ", input,
            "; writing it would destroy what this run reads"));
      }
      if (outputs[a].is_directory && Within(in, out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the input ", input, " lies inside the output directory ", Named(outputs[a]),
            "; choose a directory that holds no input"));
      }
    }
  }
  return absl::OkStatus();
}

bool IsEmptyDirectory(const fs::path& path) {
  std::error_code error;
  return fs::is_empty(path, error) && !error;
}

absl::Status CheckExisting(const Output& out, const RunFiles& files) {
  std::error_code error;
  const fs::file_status status = fs::status(out.path, error);
  if (!fs::exists(status)) return absl::OkStatus();
  if (out.is_directory && !fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(out), " exists and is not a directory; a checkpoint is a directory"));
  }
  if (!out.is_directory && fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(out), " is a directory; give the path of a file"));
  }
  const bool resumed = !files.resume.empty();
  if (out.is_directory) {
    // A run continuing its own checkpoints adds to their save directory.
    if (resumed && Within(Canonical(files.resume), Canonical(out.path))) return absl::OkStatus();
    if (IsEmptyDirectory(out.path)) return absl::OkStatus();
    if (!checkpoint::IsCheckpointDirectory(out.path)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Named(out), " is a directory that holds something other than checkpoints; refusing "
          "to write into it (choose another path)"));
    }
  } else if (resumed && out.flag == std::string("--metrics_out")) {
    return absl::OkStatus();  // a resumed run appends to its metrics
  }
  if (files.overwrite) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      Named(out), " exists (from an earlier run?); pass --overwrite to replace it, or choose "
      "another path"));
}

absl::StatusOr<fs::path> PrepareParent(const Output& out) {
  const fs::path parent = fs::absolute(out.path).parent_path();
  std::error_code error;
  fs::create_directories(parent, error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create the directory ", parent.string(),
                                                   " for ", Named(out), ": ", error.message()));
  }
  if (!fs::is_directory(parent, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(parent.string(), ", the parent of ", Named(out), ", is not a directory"));
  }
  // Root passes access(W_OK) everywhere; creating a file is the real test.
  std::string probe = (parent / ".trident-write-probe-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    const int e = errno;
    return absl::InvalidArgumentError(absl::StrCat("cannot create files in ", parent.string(),
                                                   " for ", Named(out), ": ", std::strerror(e)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return parent;
}

absl::Status CheckFreeSpace(const fs::path& directory, const Output& out, int64_t needed) {
  struct statvfs stats;
  if (needed <= 0 || ::statvfs(directory.c_str(), &stats) != 0) return absl::OkStatus();
  const int64_t available = static_cast<int64_t>(stats.f_bavail) * stats.f_frsize;
  if (available >= needed) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s: the filesystem of %s has %.1f MB free, less than the %.1f MB a checkpoint (and "
      "export) of this model needs", Named(out), directory.string(), available / 1e6,
      needed / 1e6));
}

}  // namespace

absl::Status CheckOutputSparesInputs(const char* flag, const std::string& path,
                                     bool is_directory, const std::vector<std::string>& inputs) {
  return CheckNoAliasing({{flag, path, is_directory}}, inputs);
}

absl::Status CheckRunFiles(const RunFiles& files) {
  std::vector<Output> outputs;
  if (!files.metrics.empty()) outputs.push_back({"--metrics_out", files.metrics, false});
  if (!files.save.empty()) outputs.push_back({"--save", files.save, true});
  if (!files.export_path.empty()) {
    outputs.push_back({"--export_safetensors", files.export_path, false});
  }
  std::vector<std::string> inputs = files.inputs;
  if (!files.resume.empty()) inputs.push_back(files.resume);
  // A resumed run may save next to the checkpoint it resumed from (in the same
  // save directory): new checkpoints are added beside it, and pruning removes
  // it only once newer ones exist (training/checkpoint/checkpoint_series.h).
  std::vector<std::string> protected_inputs;
  for (const std::string& input : inputs) {
    if (!files.save.empty() && !files.resume.empty() && input == files.resume &&
        Within(Canonical(files.resume), Canonical(files.save))) {
      continue;
    }
    protected_inputs.push_back(input);
  }
  RETURN_IF_ERROR(CheckNoAliasing(outputs, protected_inputs));
  for (const Output& out : outputs) {
    RETURN_IF_ERROR(CheckExisting(out, files));
    ASSIGN_OR_RETURN(const fs::path parent, PrepareParent(out));
    if (out.is_directory) {
      RETURN_IF_ERROR(CheckFreeSpace(parent, out, files.checkpoint_bytes + files.export_bytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExpandRunDirectory(std::vector<std::string*> paths) {
  // The directory that holds the runs: the part of the first {run} path
  // before the placeholder (every default shares it).
  std::optional<std::string> parent;
  for (const std::string* path : paths) {
    const size_t at = path->find(kRunPlaceholder);
    if (at != std::string::npos) {
      parent = path->substr(0, at);
      break;
    }
  }
  if (!parent.has_value()) return std::string();
  const fs::path runs = parent->empty() ? fs::path(".") : fs::path(*parent);
  std::error_code error;
  fs::create_directories(runs, error);
  if (error) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create the run directory parent ",
                                                   runs.string(), ": ", error.message()));
  }
  const std::string stamp = absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone());
  std::string id = stamp;
  // create_directory is atomic: two jobs started in the same second get two ids.
  for (int n = 2; !fs::create_directory(runs / id, error); ++n) {
    if (error || n > 1000) {
      return absl::InvalidArgumentError(absl::StrCat("cannot create a run directory under ",
                                                     runs.string(), ": ",
                                                     error ? error.message() : "all ids taken"));
    }
    id = absl::StrCat(stamp, "-", n);
  }
  for (std::string* path : paths) {
    for (size_t at; (at = path->find(kRunPlaceholder)) != std::string::npos;) {
      path->replace(at, std::strlen(kRunPlaceholder), id);
    }
  }
  // `latest` -> id, swapped in with a rename so a reader never sees it missing.
  const fs::path link = runs / "latest";
  const fs::path temporary = runs / absl::StrCat(".latest-", id);
  fs::create_directory_symlink(id, temporary, error);
  if (!error) fs::rename(temporary, link, error);
  if (error) {
    fs::remove(temporary, error);  // best effort: the link is a convenience
  }
  return (runs / id).string();
}

}  // namespace trident::training
