#include "training/checkpoint/checkpoint_meta.h"

#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/io/text_proto.h"
#include "core/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/text_format.h"
#include "transformer/model_config.h"

namespace trident::checkpoint {
namespace {

using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::Message;
using ::google::protobuf::Reflection;

// One value of `field` in `message` (element `index` of a repeated field, or
// the field itself when `index` is -1), as text format writes it, on one
// line. Only for error messages: values are compared as typed values.
std::string ValueText(const Message& message, const FieldDescriptor* field, int index) {
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  std::string text;
  printer.PrintFieldValueToString(message, field, index, &text);
  return text;
}

// Whether two scalar values are equal. Compared as typed values, never as text
// (floats compare as floats; a string's quotes cannot collide).
bool SameValue(const Message& a, const Message& b, const FieldDescriptor* field, int index) {
  const Reflection* ra = a.GetReflection();
  const Reflection* rb = b.GetReflection();
  const bool repeated = index >= 0;
#define TRIDENT_SAME(Type)                                                    \
  return repeated ? ra->GetRepeated##Type(a, field, index) ==                \
                        rb->GetRepeated##Type(b, field, index)               \
                  : ra->Get##Type(a, field) == rb->Get##Type(b, field)
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: TRIDENT_SAME(Int32);
    case FieldDescriptor::CPPTYPE_INT64: TRIDENT_SAME(Int64);
    case FieldDescriptor::CPPTYPE_UINT32: TRIDENT_SAME(UInt32);
    case FieldDescriptor::CPPTYPE_UINT64: TRIDENT_SAME(UInt64);
    case FieldDescriptor::CPPTYPE_DOUBLE: TRIDENT_SAME(Double);
    case FieldDescriptor::CPPTYPE_FLOAT: TRIDENT_SAME(Float);
    case FieldDescriptor::CPPTYPE_BOOL: TRIDENT_SAME(Bool);
    case FieldDescriptor::CPPTYPE_ENUM: TRIDENT_SAME(EnumValue);
    case FieldDescriptor::CPPTYPE_STRING: TRIDENT_SAME(String);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
#undef TRIDENT_SAME
  return false;
}

struct Difference {
  std::string field;  // "layout.pipeline_parallel"
  std::string saved;
  std::string current;
};

// The first field (in declaration order, depth first) whose value differs
// between two messages of one type. Unset fields read as their defaults, so
// presence never counts; an unset sub-message reads as its default instance.
std::optional<Difference> FirstDifference(const Message& saved, const Message& current,
                                          const std::string& prefix) {
  const google::protobuf::Descriptor* descriptor = saved.GetDescriptor();
  const Reflection* rs = saved.GetReflection();
  const Reflection* rc = current.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    const std::string name = absl::StrCat(prefix, field->name());
    if (field->is_repeated()) {
      const int n = rs->FieldSize(saved, field);
      bool same = n == rc->FieldSize(current, field);
      for (int k = 0; same && k < n; ++k) {
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          same = !FirstDifference(rs->GetRepeatedMessage(saved, field, k),
                                  rc->GetRepeatedMessage(current, field, k), "")
                      .has_value();
        } else {
          same = SameValue(saved, current, field, k);
        }
      }
      if (same) continue;
      const auto list = [&](const Message& m) {
        std::vector<std::string> items;
        for (int k = 0; k < m.GetReflection()->FieldSize(m, field); ++k) {
          items.push_back(ValueText(m, field, k));
        }
        return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
      };
      return Difference{name, list(saved), list(current)};
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      std::optional<Difference> inner = FirstDifference(
          rs->GetMessage(saved, field), rc->GetMessage(current, field), absl::StrCat(name, "."));
      if (inner.has_value()) return inner;
      continue;
    }
    if (!SameValue(saved, current, field, -1)) {
      return Difference{name, ValueText(saved, field, -1), ValueText(current, field, -1)};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string RankFileName(int rank) { return absl::StrFormat("rank_%05d.tensors", rank); }

CheckpointMeta MakeCheckpointMeta(const training::TrainConfig& config, int world_size,
                                  int64_t step, const DataPosition& data_position) {
  CheckpointMeta meta;
  meta.set_step(step);
  meta.set_seed(static_cast<uint64_t>(config.seed()));
  *meta.mutable_data_position() = data_position;
  *meta.mutable_model() = config.model();
  *meta.mutable_layout() = config.layout();
  meta.set_seq_length(config.data().seq_length());
  meta.set_world_size(world_size);
  return meta;
}

std::string FormatCheckpointMeta(const CheckpointMeta& meta) {
  return io::PrintTextProto(meta);
}

absl::StatusOr<CheckpointMeta> ParseCheckpointMeta(absl::string_view text,
                                                   absl::string_view source) {
  CheckpointMeta meta;
  const absl::Status parsed = io::ParseTextProto(text, source, &meta);
  if (!parsed.ok()) {
    return absl::DataLossError(absl::StrCat("checkpoint meta ", parsed.message()));
  }
  const auto error = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat("checkpoint meta ", source, ": ", what));
  };
  if (!meta.has_format_version()) return error("format_version is missing");
  if (meta.format_version() > kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint meta ", source, ": format_version ", meta.format_version(),
        " is newer than this program, which reads versions ", kOldestCheckpointFormatVersion,
        " to ", kCheckpointFormatVersion));
  }
  if (meta.format_version() < kOldestCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint meta ", source, ": format_version ", meta.format_version(),
        " is not supported; this program reads versions ", kOldestCheckpointFormatVersion,
        " to ", kCheckpointFormatVersion));
  }
  if (meta.world_size() < 1) {
    return error(absl::StrCat("world_size is ", meta.world_size(), "; it must be >= 1"));
  }
  if (meta.step() < 0) return error(absl::StrCat("step is ", meta.step(), "; it must be >= 0"));
  if (meta.files_size() != meta.world_size()) {
    return error(absl::StrCat("lists ", meta.files_size(), " rank files for world_size ",
                              meta.world_size()));
  }
  for (int rank = 0; rank < meta.files_size(); ++rank) {
    const RankFile& file = meta.files(rank);
    if (file.name() != RankFileName(rank)) {
      return error(absl::StrCat("files[", rank, "].name is \"", file.name(), "\", expected \"",
                                RankFileName(rank), "\""));
    }
    if (!file.has_size() || !file.has_crc32c()) {
      return error(absl::StrCat("files[", rank, "] lacks its size or crc32c"));
    }
  }
  return meta;
}

absl::Status CheckResumeCompatible(const std::string& dir, const CheckpointMeta& saved,
                                   const CheckpointMeta& current) {
  // What must match: everything that decides how the tensors are sharded over
  // the rank files and what they mean.
  const auto mismatch = [&](const Difference& d) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", dir, "' cannot be resumed by this job: ", d.field, ": checkpoint ",
        d.saved, ", this job ", d.current));
  };
  if (std::optional<Difference> d = FirstDifference(transformer::CanonicalGptConfig(saved.model()),
                                    transformer::CanonicalGptConfig(current.model()), "model.")) {
    return mismatch(*d);
  }
  if (std::optional<Difference> d =
          FirstDifference(saved.layout(), current.layout(), "layout.")) {
    return mismatch(*d);
  }
  if (saved.seq_length() != current.seq_length()) {
    return mismatch({"seq_length", absl::StrCat(saved.seq_length()),
                     absl::StrCat(current.seq_length())});
  }
  if (saved.world_size() != current.world_size()) {
    return mismatch({"world_size", absl::StrCat(saved.world_size()),
                     absl::StrCat(current.world_size())});
  }
  return absl::OkStatus();
}

namespace {
int64_t GlobalBatchSequences(const topology::ParallelLayout& layout) {
  if (layout.global_batch_size() > 0) return layout.global_batch_size();
  return int64_t{layout.micro_batch_size()} * layout.num_micro_batches() *
         layout.data_parallel();
}
}  // namespace

absl::Status CheckReshardCompatible(const std::string& dir, const CheckpointMeta& saved,
                                    const CheckpointMeta& current) {
  const auto mismatch = [&](const Difference& d) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", dir, "' cannot be resumed by this job: ", d.field, ": checkpoint ",
        d.saved, ", this job ", d.current));
  };
  if (std::optional<Difference> d = FirstDifference(transformer::CanonicalGptConfig(saved.model()),
                                    transformer::CanonicalGptConfig(current.model()), "model.")) {
    return mismatch(*d);
  }
  if (saved.seq_length() != current.seq_length()) {
    return mismatch({"seq_length", absl::StrCat(saved.seq_length()),
                     absl::StrCat(current.seq_length())});
  }
  const int64_t saved_batch = GlobalBatchSequences(saved.layout());
  const int64_t current_batch = GlobalBatchSequences(current.layout());
  if (saved_batch != current_batch) {
    return mismatch({"global batch (layout.micro_batch_size x num_micro_batches x "
                     "data_parallel, or layout.global_batch_size)",
                     absl::StrCat(saved_batch), absl::StrCat(current_batch)});
  }
  return absl::OkStatus();
}

absl::Status CheckSameData(const std::string& dir, const CheckpointMeta& saved,
                           const DataSet& current, bool allow_different) {
  if (!saved.has_data_set() || allow_different) return absl::OkStatus();
  const DataSet& was = saved.data_set();
  if (was.train_tokens() == current.train_tokens() &&
      was.train_crc32c() == current.train_crc32c()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "checkpoint ", dir, " was trained on ", was.train_path(), " (", was.train_tokens(),
      " tokens, CRC-32C ", absl::Hex(was.train_crc32c()), "); this job reads ",
      current.train_path(), " (", current.train_tokens(), " tokens, CRC-32C ",
      absl::Hex(current.train_crc32c()), "): the data position means nothing in other data; "
      "pass --allow_different_data to continue on it anyway"));
}

absl::Status CheckStoredStep(const std::string& dir, const CheckpointMeta& meta,
                             const TensorSet& tensors, absl::string_view step_tensor) {
  const LoadedTensor* stored = tensors.Find(step_tensor);
  if (stored == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(stored, tensors.GetExpected(step_tensor, DType::kInt64, {}));
  int64_t step = 0;
  std::memcpy(&step, stored->bytes.data(), sizeof(step));
  if (step != meta.step()) {
    return absl::DataLossError(absl::StrCat("checkpoint '", dir, "': ", tensors.source(),
                                            " stores ", step_tensor, " = ", step,
                                            ", but the checkpoint meta says step ", meta.step()));
  }
  return absl::OkStatus();
}

}  // namespace trident::checkpoint
