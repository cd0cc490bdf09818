#include "training/checkpoint/checkpoint.h"

#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/io/atomic_file.h"
#include "core/io/file_util.h"
#include "core/status_macros.h"
#include "training/checkpoint/tensor_file.h"

namespace trident::checkpoint {

using ::trident::io::IsDirectory;
using ::trident::io::JoinPath;
using ::trident::io::ListDirectory;
using ::trident::io::MakeDirectory;
using ::trident::io::ParentDirectory;
using ::trident::io::PathExists;
using ::trident::io::ReadFileToString;
using ::trident::io::RemoveTree;
using ::trident::io::RenamePath;
using ::trident::io::StripTrailingSlashes;
using ::trident::io::SyncDirectory;
using ::trident::io::WriteFileAtomically;

namespace {

constexpr absl::string_view kMetaFileName = "meta.textproto";

std::string MetaPath(const std::string& dir) { return JoinPath(dir, kMetaFileName); }

// Whether `dir` holds a meta file that parses: then it is a complete checkpoint
// (the meta file is always written last).
bool HasValidMeta(const std::string& dir) {
  const absl::StatusOr<std::string> text = ReadFileToString(MetaPath(dir));
  return text.ok() && ParseCheckpointMeta(*text, dir).ok();
}

// Deletes a `<dir>.partial` or `<dir>.old` directory, but only when everything
// in it is something a checkpoint write creates (rank files, the meta file and
// their temporaries): a user's own directory that happens to carry such a name
// is never deleted.
absl::Status RemoveCheckpointWork(const std::string& path) {
  if (!PathExists(path)) return absl::OkStatus();
  if (!IsDirectory(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to delete '", path, "': it is not a checkpoint directory"));
  }
  ASSIGN_OR_RETURN(const std::vector<std::string> entries, ListDirectory(path));
  for (const std::string& entry : entries) {
    if (!absl::StartsWith(entry, "rank_") && !absl::StartsWith(entry, kMetaFileName)) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to delete '", path, "': it holds '", entry,
                       "', which no checkpoint write creates"));
    }
  }
  return RemoveTree(path);
}

absl::Status ValidateMetaForWrite(const CheckpointMeta& meta) {
  if (meta.world_size() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint world_size is ", meta.world_size(), "; it must be >= 1"));
  }
  if (meta.step() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint step is ", meta.step(), "; it must be >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string PartialCheckpointDir(absl::string_view dir) {
  return absl::StrCat(StripTrailingSlashes(dir), ".partial");
}

std::string OldCheckpointDir(absl::string_view dir) {
  return absl::StrCat(StripTrailingSlashes(dir), ".old");
}

absl::Status RecoverCheckpoint(const std::string& dir_path) {
  const std::string dir = StripTrailingSlashes(dir_path);
  const std::string parent = ParentDirectory(dir);
  const std::string partial = PartialCheckpointDir(dir);
  const std::string old = OldCheckpointDir(dir);
  if (!PathExists(dir)) {
    // Interrupted between FinalizeCheckpoint's two renames: the new checkpoint
    // is complete when its meta file is there; otherwise the old one returns.
    if (IsDirectory(partial) && HasValidMeta(partial)) {
      RETURN_IF_ERROR(RenamePath(partial, dir));
      RETURN_IF_ERROR(SyncDirectory(parent));
    } else if (IsDirectory(old)) {
      RETURN_IF_ERROR(RenamePath(old, dir));
      RETURN_IF_ERROR(SyncDirectory(parent));
    }
  }
  if (PathExists(dir) && PathExists(old)) {
    RETURN_IF_ERROR(RemoveCheckpointWork(old));
    RETURN_IF_ERROR(SyncDirectory(parent));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BeginCheckpoint(const std::string& dir_path) {
  const std::string dir = StripTrailingSlashes(dir_path);
  RETURN_IF_ERROR(RecoverCheckpoint(dir));
  const std::string partial = PartialCheckpointDir(dir);
  RETURN_IF_ERROR(RemoveCheckpointWork(partial));
  RETURN_IF_ERROR(MakeDirectory(partial));
  RETURN_IF_ERROR(SyncDirectory(ParentDirectory(dir)));
  return partial;
}

absl::Status WriteRankShard(const std::string& partial_dir, int rank,
                            absl::Span<const TensorBlob> tensors) {
  if (rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat("rank is ", rank, "; it must be >= 0"));
  }
  RETURN_IF_ERROR(MakeDirectory(partial_dir));
  absl::StatusOr<TensorFileSummary> written =
      WriteTensorFile(JoinPath(partial_dir, RankFileName(rank)), tensors);
  if (!written.ok()) {
    return absl::Status(written.status().code(),
                        absl::StrCat("checkpoint rank ", rank, ": ", written.status().message()));
  }
  return absl::OkStatus();
}

absl::Status FinalizeCheckpoint(const std::string& dir_path, const CheckpointMeta& meta) {
  RETURN_IF_ERROR(ValidateMetaForWrite(meta));
  const std::string dir = StripTrailingSlashes(dir_path);
  const std::string parent = ParentDirectory(dir);
  const std::string partial = PartialCheckpointDir(dir);
  const std::string old = OldCheckpointDir(dir);

  // Never replace something that is not a checkpoint of ours (an empty
  // directory, e.g. made by the user for --save, holds nothing to lose).
  if (PathExists(dir)) {
    bool replaceable = false;
    if (IsDirectory(dir)) {
      ASSIGN_OR_RETURN(const std::vector<std::string> existing, ListDirectory(dir));
      replaceable = existing.empty() || PathExists(MetaPath(dir));
    }
    if (!replaceable) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", dir, "' exists and is not a checkpoint (no ", kMetaFileName,
          "); refusing to replace it (the rank files stay in '", partial, "')"));
    }
  }

  // The partial directory must hold exactly this write's rank files.
  ASSIGN_OR_RETURN(const std::vector<std::string> entries, ListDirectory(partial));
  for (const std::string& entry : entries) {
    int rank = -1;
    bool expected = false;
    if (absl::StartsWith(entry, "rank_") && absl::EndsWith(entry, ".tensors") &&
        sscanf(entry.c_str(), "rank_%d.tensors", &rank) == 1) {
      expected = rank >= 0 && rank < meta.world_size() && entry == RankFileName(rank);
    }
    if (!expected) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", partial, "' holds unexpected entry '", entry, "' (expected only ",
          RankFileName(0), "..", RankFileName(meta.world_size() - 1),
          "); start each checkpoint with BeginCheckpoint"));
    }
  }
  CheckpointMeta final_meta = meta;
  final_meta.set_format_version(kCheckpointFormatVersion);
  final_meta.clear_files();
  for (int rank = 0; rank < meta.world_size(); ++rank) {
    const std::string path = JoinPath(partial, RankFileName(rank));
    if (!PathExists(path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint '", dir, "' cannot be finalized: rank ", rank, " of ", meta.world_size(),
          " has not written '", path, "'"));
    }
    ASSIGN_OR_RETURN(const TensorFileSummary summary, ReadTensorFileSummary(path));
    RankFile* file = final_meta.add_files();
    file->set_name(RankFileName(rank));
    file->set_size(summary.file_size);
    file->set_crc32c(summary.file_crc32c);
  }
  RETURN_IF_ERROR(WriteFileAtomically(MetaPath(partial), FormatCheckpointMeta(final_meta)));

  if (PathExists(dir)) {
    if (PathExists(old)) RETURN_IF_ERROR(RemoveCheckpointWork(old));  // stale, <dir> is complete
    RETURN_IF_ERROR(RenamePath(dir, old));
    RETURN_IF_ERROR(SyncDirectory(parent));
    RETURN_IF_ERROR(RenamePath(partial, dir));
    RETURN_IF_ERROR(SyncDirectory(parent));
    RETURN_IF_ERROR(RemoveCheckpointWork(old));
  } else {
    RETURN_IF_ERROR(RenamePath(partial, dir));
    if (PathExists(old)) {
      RETURN_IF_ERROR(SyncDirectory(parent));
      RETURN_IF_ERROR(RemoveCheckpointWork(old));
    }
  }
  return SyncDirectory(parent);
}

absl::StatusOr<CheckpointMeta> ReadCheckpointMeta(const std::string& dir_path) {
  const std::string dir = StripTrailingSlashes(dir_path);
  if (!IsDirectory(dir)) {
    const std::string partial = PartialCheckpointDir(dir);
    const std::string old = OldCheckpointDir(dir);
    const bool recoverable = IsDirectory(old) || (IsDirectory(partial) && HasValidMeta(partial));
    if (recoverable) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint '", dir, "' does not exist, but '", IsDirectory(old) ? old : partial,
          "' does: replacing the checkpoint was interrupted; RecoverCheckpoint('", dir,
          "') restores the last complete one"));
    }
    return absl::NotFoundError(absl::StrCat(
        "checkpoint directory '", dir, "' does not exist",
        PathExists(partial) ? absl::StrCat(" ('", partial, "' holds an unfinished write)") : ""));
  }
  const std::string path = MetaPath(dir);
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("checkpoint '", dir, "' has no ", kMetaFileName,
                                            ": it is incomplete or not a checkpoint"));
  }
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  return ParseCheckpointMeta(text, path);
}

absl::StatusOr<TensorSet> ReadRankShard(const std::string& dir_path, int rank) {
  const std::string dir = StripTrailingSlashes(dir_path);
  ASSIGN_OR_RETURN(const CheckpointMeta meta, ReadCheckpointMeta(dir));
  if (rank < 0 || rank >= meta.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is outside checkpoint '", dir,
                                                   "', written by ", meta.world_size(), " ranks"));
  }
  const RankFile& expected = meta.files(rank);
  const std::string path = JoinPath(dir, expected.name());
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("checkpoint '", dir, "' is missing rank ", rank,
                                            "'s file '", path, "'"));
  }
  // The trailer first: a whole file from elsewhere (another checkpoint) passes
  // its own checks but not this comparison.
  ASSIGN_OR_RETURN(const TensorFileSummary summary, ReadTensorFileSummary(path));
  if (summary.file_size != expected.size() || summary.file_crc32c != expected.crc32c()) {
    return absl::DataLossError(absl::StrFormat(
        "checkpoint '%s': '%s' has %d bytes and CRC-32C 0x%08x, but %s records %d bytes "
        "and 0x%08x: the file does not belong to this checkpoint",
        dir, path, summary.file_size, summary.file_crc32c, kMetaFileName, expected.size(),
        expected.crc32c()));
  }
  ASSIGN_OR_RETURN(TensorSet tensors, ReadTensorFile(path));
  tensors.set_source(absl::StrCat("checkpoint '", dir, "' rank ", rank));
  return tensors;
}

absl::Status SaveCheckpoint(const std::string& dir, const CheckpointMeta& meta,
                            absl::Span<const TensorBlob> tensors) {
  if (meta.world_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SaveCheckpoint writes single-process checkpoints, but meta.world_size is ",
        meta.world_size(), "; use BeginCheckpoint/WriteRankShard/FinalizeCheckpoint"));
  }
  RETURN_IF_ERROR(ValidateBlobs(tensors));  // fail before touching the directory
  ASSIGN_OR_RETURN(const std::string partial, BeginCheckpoint(dir));
  RETURN_IF_ERROR(WriteRankShard(partial, 0, tensors));
  return FinalizeCheckpoint(dir, meta);
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                const CheckpointMeta& current) {
  ASSIGN_OR_RETURN(CheckpointMeta meta, ReadCheckpointMeta(dir));
  RETURN_IF_ERROR(CheckResumeCompatible(dir, meta, current));
  ASSIGN_OR_RETURN(TensorSet tensors, ReadRankShard(dir, 0));
  return LoadedCheckpoint{std::move(meta), std::move(tensors)};
}

}  // namespace trident::checkpoint
