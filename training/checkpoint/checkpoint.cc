#include "training/checkpoint/checkpoint.h"

#include <cstdio>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/io/atomic_file.h"
#include "core/io/file_util.h"
#include "core/io/json.h"
#include "core/status_macros.h"
#include "training/checkpoint/tensor_file.h"

namespace trident::checkpoint {

using ::trident::io::AppendJsonString;
using ::trident::io::IsDirectory;
using ::trident::io::JoinPath;
using ::trident::io::JsonKindName;
using ::trident::io::JsonValue;
using ::trident::io::ListDirectory;
using ::trident::io::MakeDirectory;
using ::trident::io::ParentDirectory;
using ::trident::io::ParseJson;
using ::trident::io::PathExists;
using ::trident::io::ReadFileToString;
using ::trident::io::RemoveTree;
using ::trident::io::RenamePath;
using ::trident::io::StripTrailingSlashes;
using ::trident::io::SyncDirectory;
using ::trident::io::WriteFileAtomically;

namespace {

constexpr absl::string_view kMetaFileName = "meta.json";
constexpr absl::string_view kFormatName = "trident-checkpoint";

absl::StatusOr<std::string> DecodeHex(absl::string_view hex, absl::string_view what) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has odd length ", hex.size()));
  }
  for (const char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has non-hex character '",
                                                     absl::CEscape(absl::string_view(&c, 1)),
                                                     "'"));
    }
  }
  return absl::HexStringToBytes(hex);
}

// Field accessors for the meta.json parser; errors name the field.
class MetaFields {
 public:
  MetaFields(const JsonValue& object, std::string source)
      : object_(object), source_(std::move(source)) {}

  absl::Status Error(absl::string_view message) const {
    return absl::DataLossError(absl::StrCat(source_, ": ", message));
  }

  absl::StatusOr<const JsonValue*> Get(absl::string_view field, JsonValue::Kind kind) const {
    const JsonValue* value = object_.Find(field);
    if (value == nullptr) return Error(absl::StrCat("field \"", field, "\" is missing"));
    if (value->kind() != kind) {
      return Error(absl::StrCat("field \"", field, "\" is a ", JsonKindName(value->kind()),
                                ", expected a ", JsonKindName(kind)));
    }
    return value;
  }

  absl::StatusOr<std::string> String(absl::string_view field) const {
    ASSIGN_OR_RETURN(const JsonValue* value, Get(field, JsonValue::Kind::kString));
    return value->string_value();
  }

  absl::StatusOr<int64_t> Int64(absl::string_view field) const {
    ASSIGN_OR_RETURN(const JsonValue* value, Get(field, JsonValue::Kind::kNumber));
    absl::StatusOr<int64_t> result = value->AsInt64(absl::StrCat("field \"", field, "\""));
    if (!result.ok()) return Error(result.status().message());
    return *result;
  }

  absl::StatusOr<uint64_t> Uint64(absl::string_view field) const {
    ASSIGN_OR_RETURN(const JsonValue* value, Get(field, JsonValue::Kind::kNumber));
    absl::StatusOr<uint64_t> result = value->AsUint64(absl::StrCat("field \"", field, "\""));
    if (!result.ok()) return Error(result.status().message());
    return *result;
  }

  // Every member must be one of `known`.
  absl::Status CheckOnly(absl::Span<const absl::string_view> known) const {
    for (const JsonValue::Member& member : object_.members()) {
      bool found = false;
      for (const absl::string_view name : known) found = found || member.first == name;
      if (!found) {
        return Error(absl::StrCat("field \"", member.first, "\" is unknown (known: ",
                                  absl::StrJoin(known, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

 private:
  const JsonValue& object_;
  std::string source_;
};

std::string MetaPath(const std::string& dir) { return JoinPath(dir, kMetaFileName); }

// Whether `dir` holds a meta.json that parses: then it is a complete checkpoint
// (meta.json is always written last).
bool HasValidMeta(const std::string& dir) {
  const absl::StatusOr<std::string> text = ReadFileToString(MetaPath(dir));
  return text.ok() && ParseCheckpointMeta(*text, dir).ok();
}

// Deletes a `<dir>.partial` or `<dir>.old` directory, but only when everything
// in it is something a checkpoint write creates (rank files, meta.json and
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
  if (meta.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint world_size is ", meta.world_size, "; it must be >= 1"));
  }
  if (meta.step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint step is ", meta.step, "; it must be >= 0"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string RankFileName(int rank) { return absl::StrFormat("rank_%05d.tensors", rank); }

std::string PartialCheckpointDir(absl::string_view dir) {
  return absl::StrCat(StripTrailingSlashes(dir), ".partial");
}

std::string OldCheckpointDir(absl::string_view dir) {
  return absl::StrCat(StripTrailingSlashes(dir), ".old");
}

std::string FormatCheckpointMeta(const CheckpointMeta& meta) {
  std::string text = "{\n  \"format\": ";
  AppendJsonString(kFormatName, &text);
  absl::StrAppend(&text, ",\n  \"format_version\": ", meta.format_version,
                  ",\n  \"step\": ", meta.step, ",\n  \"seed\": ", meta.seed,
                  ",\n  \"world_size\": ", meta.world_size, ",\n  \"layout\": ");
  AppendJsonString(meta.layout, &text);
  absl::StrAppend(&text, ",\n  \"data_position\": [", absl::StrJoin(meta.data_position, ", "),
                  "],\n  \"rng_state_hex\": \"", absl::BytesToHexString(meta.rng_state),
                  "\",\n  \"files\": [");
  for (size_t i = 0; i < meta.files.size(); ++i) {
    text += i == 0 ? "\n    {\"name\": " : ",\n    {\"name\": ";
    AppendJsonString(meta.files[i].name, &text);
    absl::StrAppend(&text, ", \"size\": ", meta.files[i].size,
                    ", \"crc32c\": ", meta.files[i].crc32c, "}");
  }
  text += meta.files.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return text;
}

absl::StatusOr<CheckpointMeta> ParseCheckpointMeta(absl::string_view text,
                                                   absl::string_view source) {
  const std::string where = absl::StrCat("checkpoint meta '", source, "'");
  absl::StatusOr<JsonValue> json = ParseJson(text);
  if (!json.ok()) return absl::DataLossError(absl::StrCat(where, ": ", json.status().message()));
  if (!json->is_object()) return absl::DataLossError(absl::StrCat(where, ": not a JSON object"));
  const MetaFields fields(*json, where);
  RETURN_IF_ERROR(fields.CheckOnly({"format", "format_version", "step", "seed", "world_size",
                                    "layout", "data_position", "rng_state_hex", "files"}));
  ASSIGN_OR_RETURN(const std::string format, fields.String("format"));
  if (format != kFormatName) {
    return fields.Error(absl::StrCat("field \"format\" is \"", format, "\", expected \"",
                                     kFormatName, "\""));
  }
  CheckpointMeta meta;
  ASSIGN_OR_RETURN(const int64_t version, fields.Int64("format_version"));
  if (version < 1 || version > kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": format_version ", version,
                     " is not supported; this program reads versions 1..",
                     kCheckpointFormatVersion));
  }
  meta.format_version = static_cast<int>(version);
  ASSIGN_OR_RETURN(meta.step, fields.Int64("step"));
  ASSIGN_OR_RETURN(meta.seed, fields.Uint64("seed"));
  ASSIGN_OR_RETURN(const int64_t world_size, fields.Int64("world_size"));
  if (world_size < 1 || world_size > (1 << 24)) {
    return fields.Error(absl::StrCat("field \"world_size\" is ", world_size,
                                     "; it must be in [1, 2^24]"));
  }
  meta.world_size = static_cast<int>(world_size);
  ASSIGN_OR_RETURN(meta.layout, fields.String("layout"));
  ASSIGN_OR_RETURN(const JsonValue* position, fields.Get("data_position", JsonValue::Kind::kArray));
  for (const JsonValue& item : position->items()) {
    absl::StatusOr<int64_t> value = item.AsInt64("an element of \"data_position\"");
    if (!value.ok()) return fields.Error(value.status().message());
    meta.data_position.push_back(*value);
  }
  ASSIGN_OR_RETURN(const std::string rng_hex, fields.String("rng_state_hex"));
  absl::StatusOr<std::string> rng_state = DecodeHex(rng_hex, "field \"rng_state_hex\"");
  if (!rng_state.ok()) return fields.Error(rng_state.status().message());
  meta.rng_state = *std::move(rng_state);

  ASSIGN_OR_RETURN(const JsonValue* files, fields.Get("files", JsonValue::Kind::kArray));
  if (files->items().size() != static_cast<size_t>(meta.world_size)) {
    return fields.Error(absl::StrCat("lists ", files->items().size(), " rank files for world_size ",
                                     meta.world_size));
  }
  for (size_t rank = 0; rank < files->items().size(); ++rank) {
    const JsonValue& item = files->items()[rank];
    const std::string item_where = absl::StrCat(where, " files[", rank, "]");
    if (!item.is_object()) return absl::DataLossError(absl::StrCat(item_where, ": not an object"));
    const MetaFields file_fields(item, item_where);
    RETURN_IF_ERROR(file_fields.CheckOnly({"name", "size", "crc32c"}));
    RankFileInfo info;
    ASSIGN_OR_RETURN(info.name, file_fields.String("name"));
    if (info.name != RankFileName(static_cast<int>(rank))) {
      return file_fields.Error(absl::StrCat("name is \"", info.name, "\", expected \"",
                                            RankFileName(static_cast<int>(rank)), "\""));
    }
    ASSIGN_OR_RETURN(info.size, file_fields.Uint64("size"));
    ASSIGN_OR_RETURN(const uint64_t crc, file_fields.Uint64("crc32c"));
    if (crc > 0xFFFFFFFFu) return file_fields.Error(absl::StrCat("crc32c ", crc, " exceeds 32 bits"));
    info.crc32c = static_cast<uint32_t>(crc);
    meta.files.push_back(std::move(info));
  }
  return meta;
}

absl::Status RecoverCheckpoint(const std::string& dir_path) {
  const std::string dir = StripTrailingSlashes(dir_path);
  const std::string parent = ParentDirectory(dir);
  const std::string partial = PartialCheckpointDir(dir);
  const std::string old = OldCheckpointDir(dir);
  if (!PathExists(dir)) {
    // Interrupted between FinalizeCheckpoint's two renames: the new checkpoint
    // is complete when its meta.json is there; otherwise the old one returns.
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
      expected = rank >= 0 && rank < meta.world_size && entry == RankFileName(rank);
    }
    if (!expected) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", partial, "' holds unexpected entry '", entry, "' (expected only ",
          RankFileName(0), "..", RankFileName(meta.world_size - 1),
          "); start each checkpoint with BeginCheckpoint"));
    }
  }
  CheckpointMeta final_meta = meta;
  final_meta.format_version = kCheckpointFormatVersion;
  final_meta.files.clear();
  for (int rank = 0; rank < meta.world_size; ++rank) {
    const std::string path = JoinPath(partial, RankFileName(rank));
    if (!PathExists(path)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint '", dir, "' cannot be finalized: rank ", rank, " of ", meta.world_size,
          " has not written '", path, "'"));
    }
    ASSIGN_OR_RETURN(const TensorFileSummary summary, ReadTensorFileSummary(path));
    final_meta.files.push_back(RankFileInfo{RankFileName(rank), summary.file_size,
                                            summary.file_crc32c});
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

absl::Status CheckResumeCompatible(const std::string& dir, const CheckpointMeta& meta,
                                   int world_size, absl::string_view layout) {
  if (meta.world_size != world_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", dir, "' was written by ", meta.world_size, " ranks, this job has ",
        world_size, "; resuming under a different world size is not supported"));
  }
  if (meta.layout != layout) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", dir, "' was written under layout \"", absl::CEscape(meta.layout),
        "\", this job's layout is \"", absl::CEscape(layout),
        "\"; resuming under a different parallel layout is not supported"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorSet> ReadRankShard(const std::string& dir_path, int rank) {
  const std::string dir = StripTrailingSlashes(dir_path);
  ASSIGN_OR_RETURN(const CheckpointMeta meta, ReadCheckpointMeta(dir));
  if (rank < 0 || rank >= meta.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", rank, " is outside checkpoint '", dir,
                                                   "', written by ", meta.world_size, " ranks"));
  }
  const RankFileInfo& expected = meta.files[rank];
  const std::string path = JoinPath(dir, expected.name);
  if (!PathExists(path)) {
    return absl::NotFoundError(absl::StrCat("checkpoint '", dir, "' is missing rank ", rank,
                                            "'s file '", path, "'"));
  }
  // The trailer first: a whole file from elsewhere (another checkpoint) passes
  // its own checks but not this comparison.
  ASSIGN_OR_RETURN(const TensorFileSummary summary, ReadTensorFileSummary(path));
  if (summary.file_size != expected.size || summary.file_crc32c != expected.crc32c) {
    return absl::DataLossError(absl::StrFormat(
        "checkpoint '%s': '%s' has %d bytes and CRC-32C 0x%08x, but meta.json records %d bytes "
        "and 0x%08x: the file does not belong to this checkpoint",
        dir, path, summary.file_size, summary.file_crc32c, expected.size, expected.crc32c));
  }
  ASSIGN_OR_RETURN(TensorSet tensors, ReadTensorFile(path));
  tensors.set_source(absl::StrCat("checkpoint '", dir, "' rank ", rank));
  return tensors;
}

absl::Status SaveCheckpoint(const std::string& dir, const CheckpointMeta& meta,
                            absl::Span<const TensorBlob> tensors) {
  if (meta.world_size != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SaveCheckpoint writes single-process checkpoints, but meta.world_size is ",
        meta.world_size, "; use BeginCheckpoint/WriteRankShard/FinalizeCheckpoint"));
  }
  RETURN_IF_ERROR(ValidateBlobs(tensors));  // fail before touching the directory
  ASSIGN_OR_RETURN(const std::string partial, BeginCheckpoint(dir));
  RETURN_IF_ERROR(WriteRankShard(partial, 0, tensors));
  return FinalizeCheckpoint(dir, meta);
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                absl::string_view layout) {
  ASSIGN_OR_RETURN(CheckpointMeta meta, ReadCheckpointMeta(dir));
  RETURN_IF_ERROR(CheckResumeCompatible(dir, meta, 1, layout));
  ASSIGN_OR_RETURN(TensorSet tensors, ReadRankShard(dir, 0));
  return LoadedCheckpoint{std::move(meta), std::move(tensors)};
}

}  // namespace trident::checkpoint
