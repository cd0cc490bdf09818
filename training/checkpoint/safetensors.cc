#include "training/checkpoint/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/io/atomic_file.h"
#include "core/io/file_util.h"
#include "core/io/json_parse.h"
#include "core/io/little_endian.h"
#include "core/io/utf8.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"

namespace trident::checkpoint {

using ::nlohmann::ordered_json;
using ::trident::io::AppendLittleEndian;
using ::trident::io::AtomicFileWriter;
using ::trident::io::IsValidUtf8;
using ::trident::io::JsonTypeName;
using ::trident::io::LoadLittleEndian;
using ::trident::io::ParseJsonDocument;
using ::trident::io::ReadOnlyFile;

namespace {

// The reference refuses headers above this size.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr absl::string_view kMetadataKey = "__metadata__";

// Position of a dtype in the reference implementation's `Dtype` enum, whose
// derived ordering decides the order of tensors in a file.
int ReferenceDTypeOrder(DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return 7;
    case DType::kBFloat16:
      return 8;
    case DType::kInt32:
      return 9;
    case DType::kFloat32:
      return 11;
    case DType::kInt64:
      return 13;
  }
  return -1;
}

// Indices of `tensors` in the reference's file order.
std::vector<size_t> ReferenceOrder(absl::Span<const TensorBlob> tensors) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int order_a = ReferenceDTypeOrder(tensors[a].dtype);
    const int order_b = ReferenceDTypeOrder(tensors[b].dtype);
    if (order_a != order_b) return order_a > order_b;
    return tensors[a].name < tensors[b].name;  // bytewise, as Rust compares strings
  });
  return order;
}

absl::Status ValidateForSafetensors(absl::Span<const TensorBlob> tensors,
                                    const SafetensorsMetadata& metadata) {
  RETURN_IF_ERROR(ValidateBlobs(tensors));
  for (const TensorBlob& blob : tensors) {
    if (blob.name == kMetadataKey) {
      return absl::InvalidArgumentError("a tensor may not be named \"__metadata__\"");
    }
    if (!IsValidUtf8(blob.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name '", blob.name, "' is not valid UTF-8"));
    }
  }
  for (const auto& [key, value] : metadata) {
    if (!IsValidUtf8(key) || !IsValidUtf8(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata entry '", key, "' is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

// Source "where" prefix for reader errors.
absl::Status ReadError(absl::string_view source, absl::string_view message) {
  return absl::DataLossError(absl::StrCat(source, ": ", message));
}

// One tensor's entry of a parsed header.
struct HeaderEntry {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct ParsedHeader {
  std::vector<HeaderEntry> entries;  // sorted by data offset
  SafetensorsMetadata metadata;
};

absl::StatusOr<HeaderEntry> ParseEntry(absl::string_view source, const std::string& name,
                                       const ordered_json& value) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!value.is_object()) {
    return ReadError(source, absl::StrCat(where, " is a JSON ", JsonTypeName(value),
                                          ", expected an object"));
  }
  for (const auto& [key, unused] : value.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return ReadError(source, absl::StrCat(where, " has unknown field \"", key,
                                            "\" (expected dtype, shape, data_offsets)"));
    }
  }
  if (!value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets")) {
    return ReadError(source, absl::StrCat(where, " lacks one of dtype, shape, data_offsets"));
  }
  const ordered_json& dtype = value["dtype"];
  const ordered_json& shape = value["shape"];
  const ordered_json& offsets = value["data_offsets"];
  HeaderEntry entry;
  entry.name = name;
  if (!dtype.is_string()) {
    return ReadError(source, absl::StrCat(where, " has a non-string dtype"));
  }
  absl::StatusOr<DType> parsed_dtype = ParseSafetensorsDType(dtype.get<std::string>());
  if (!parsed_dtype.ok()) {
    return ReadError(source, absl::StrCat(where, ": ", parsed_dtype.status().message()));
  }
  entry.dtype = *parsed_dtype;
  if (!shape.is_array()) {
    return ReadError(source, absl::StrCat(where, " has a shape that is not an array"));
  }
  for (const ordered_json& dim : shape) {
    // Integers only: nlohmann keeps 12 and 12.0 apart (is_number_integer).
    if (!dim.is_number_integer() || (dim.is_number_unsigned() &&
                                     dim.get<uint64_t>() > std::numeric_limits<int64_t>::max()) ||
        (!dim.is_number_unsigned() && dim.get<int64_t>() < 0)) {
      return ReadError(source, absl::StrCat(where, " has shape dimension ",
                                            dim.is_number() ? dim.dump() : JsonTypeName(dim),
                                            "; dimensions must be integers >= 0"));
    }
    entry.shape.push_back(dim.get<int64_t>());
  }
  if (!offsets.is_array() || offsets.size() != 2) {
    return ReadError(source, absl::StrCat(where, " needs data_offsets [begin, end]"));
  }
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned() ||
      offsets[1].get<uint64_t>() < offsets[0].get<uint64_t>()) {
    return ReadError(source, absl::StrCat(where, " has bad data_offsets: they must be two ",
                                          "integers with 0 <= begin <= end"));
  }
  entry.begin = offsets[0].get<uint64_t>();
  entry.end = offsets[1].get<uint64_t>();
  const absl::StatusOr<int64_t> elements = NumElements(entry.shape);
  const uint64_t element_size = DTypeSize(entry.dtype);
  if (!elements.ok() ||
      static_cast<uint64_t>(*elements) > std::numeric_limits<uint64_t>::max() / element_size ||
      static_cast<uint64_t>(*elements) * element_size != entry.end - entry.begin) {
    return ReadError(source, absl::StrCat(where, " has ", entry.end - entry.begin,
                                          " bytes [", entry.begin, ", ", entry.end,
                                          "), but shape ", ShapeToString(entry.shape), " of ",
                                          SafetensorsDTypeName(entry.dtype), " needs ",
                                          elements.ok() ? *elements : -1, " x ", element_size));
  }
  return entry;
}

absl::StatusOr<ParsedHeader> ParseHeader(absl::string_view source, absl::string_view header,
                                         uint64_t data_size) {
  absl::StatusOr<ordered_json> json = ParseJsonDocument(header);
  if (!json.ok()) return ReadError(source, absl::StrCat("header: ", json.status().message()));
  if (!json->is_object()) return ReadError(source, "header is not a JSON object");
  ParsedHeader parsed;
  for (const auto& [key, value] : json->items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) {
        return ReadError(source, "__metadata__ must be an object of strings");
      }
      for (const auto& [item_key, item] : value.items()) {
        if (!item.is_string()) {
          return ReadError(source, absl::StrCat("__metadata__ entry \"", item_key, "\" is a ",
                                                JsonTypeName(item), ", expected a string"));
        }
        parsed.metadata[item_key] = item.get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(HeaderEntry entry, ParseEntry(source, key, value));
    parsed.entries.push_back(std::move(entry));
  }
  std::stable_sort(parsed.entries.begin(), parsed.entries.end(),
                   [](const HeaderEntry& a, const HeaderEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t expected_begin = 0;
  for (size_t i = 0; i < parsed.entries.size(); ++i) {
    const HeaderEntry& entry = parsed.entries[i];
    if (entry.begin < expected_begin) {
      return ReadError(source, absl::StrCat("tensor '", entry.name, "' bytes [", entry.begin,
                                            ", ", entry.end, ") overlap tensor '",
                                            parsed.entries[i - 1].name, "' bytes [",
                                            parsed.entries[i - 1].begin, ", ",
                                            parsed.entries[i - 1].end, ")"));
    }
    if (entry.begin > expected_begin) {
      return ReadError(source, absl::StrCat("data bytes [", expected_begin, ", ", entry.begin,
                                            ") belong to no tensor (before tensor '",
                                            entry.name, "')"));
    }
    expected_begin = entry.end;
  }
  if (expected_begin != data_size) {
    return ReadError(source, absl::StrCat("tensors cover ", expected_begin,
                                          " data bytes, but the file holds ", data_size,
                                          " after its header"));
  }
  return parsed;
}

// Reads the length prefix and header text of a file of `file_size` bytes;
// `read(offset, size)` fetches bytes.
template <typename ReadFn>
absl::StatusOr<std::pair<uint64_t, ParsedHeader>> ReadHeader(absl::string_view source,
                                                             uint64_t file_size, ReadFn read) {
  if (file_size < 8) {
    return ReadError(source, absl::StrCat("has ", file_size,
                                          " bytes, too few for the 8-byte header length"));
  }
  ASSIGN_OR_RETURN(const std::string length_bytes, read(0, 8));
  const uint64_t header_size = LoadLittleEndian<uint64_t>(length_bytes.data());
  if (header_size > kMaxHeaderSize) {
    return ReadError(source, absl::StrCat("header length ", header_size,
                                          " exceeds the format's limit of ", kMaxHeaderSize));
  }
  if (header_size > file_size - 8) {
    return ReadError(source, absl::StrCat("header length ", header_size,
                                          " runs past the end of the file (", file_size,
                                          " bytes)"));
  }
  ASSIGN_OR_RETURN(const std::string header, read(8, header_size));
  const uint64_t data_start = 8 + header_size;
  ASSIGN_OR_RETURN(ParsedHeader parsed, ParseHeader(source, header, file_size - data_start));
  return std::make_pair(data_start, std::move(parsed));
}

absl::StatusOr<SafetensorsContents> MakeContents(absl::string_view source, ParsedHeader header,
                                                 std::vector<LoadedTensor> tensors) {
  ASSIGN_OR_RETURN(TensorSet set, TensorSet::Create(std::string(source), std::move(tensors)));
  return SafetensorsContents{std::move(set), std::move(header.metadata)};
}

}  // namespace

absl::string_view SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "F32";
    case DType::kBFloat16:
      return "BF16";
    case DType::kFloat16:
      return "F16";
    case DType::kInt32:
      return "I32";
    case DType::kInt64:
      return "I64";
  }
  return "unknown";
}

absl::StatusOr<DType> ParseSafetensorsDType(absl::string_view name) {
  for (const DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16, DType::kInt32,
                            DType::kInt64}) {
    if (SafetensorsDTypeName(dtype) == name) return dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "dtype \"", name, "\" is not supported (supported: F32, BF16, F16, I32, I64)"));
}

absl::StatusOr<std::string> SafetensorsHeader(absl::Span<const TensorBlob> tensors,
                                              const SafetensorsMetadata& metadata) {
  RETURN_IF_ERROR(ValidateForSafetensors(tensors, metadata));
  SafetensorsMetadata full_metadata = metadata;
  full_metadata.emplace("format", "pt");

  // Members in the reference's order: __metadata__ first, then the tensors by
  // dtype and name; dump() writes compact JSON like the reference does.
  ordered_json json = ordered_json::object();
  ordered_json& metadata_json = json[std::string(kMetadataKey)] = ordered_json::object();
  for (const auto& [key, value] : full_metadata) metadata_json[key] = value;
  uint64_t offset = 0;
  for (const size_t index : ReferenceOrder(tensors)) {
    const TensorBlob& blob = tensors[index];
    json[blob.name] = {{"dtype", std::string(SafetensorsDTypeName(blob.dtype))},
                       {"shape", blob.shape},
                       {"data_offsets", {offset, offset + blob.bytes.size()}}};
    offset += blob.bytes.size();
  }
  std::string header = json.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

absl::StatusOr<std::string> SerializeSafetensors(absl::Span<const TensorBlob> tensors,
                                                 const SafetensorsMetadata& metadata) {
  ASSIGN_OR_RETURN(const std::string header, SafetensorsHeader(tensors, metadata));
  std::string file;
  AppendLittleEndian<uint64_t>(header.size(), &file);
  file += header;
  for (const size_t index : ReferenceOrder(tensors)) {
    file.append(reinterpret_cast<const char*>(tensors[index].bytes.data()),
                tensors[index].bytes.size());
  }
  return file;
}

absl::Status WriteSafetensors(const std::string& path, absl::Span<const TensorBlob> tensors,
                              const SafetensorsMetadata& metadata) {
  ASSIGN_OR_RETURN(const std::string header, SafetensorsHeader(tensors, metadata));
  std::string prefix;
  AppendLittleEndian<uint64_t>(header.size(), &prefix);
  prefix += header;
  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  RETURN_IF_ERROR(writer.Append(prefix));
  for (const size_t index : ReferenceOrder(tensors)) {
    RETURN_IF_ERROR(writer.Append(tensors[index].bytes));
  }
  return writer.Commit();
}

absl::StatusOr<SafetensorsContents> ParseSafetensors(absl::string_view file_bytes,
                                                     absl::string_view source) {
  auto read = [&](uint64_t offset, uint64_t size) -> absl::StatusOr<std::string> {
    return std::string(file_bytes.substr(offset, size));
  };
  ASSIGN_OR_RETURN(auto header, ReadHeader(source, file_bytes.size(), read));
  const uint64_t data_start = header.first;
  std::vector<LoadedTensor> tensors;
  tensors.reserve(header.second.entries.size());
  for (const HeaderEntry& entry : header.second.entries) {
    LoadedTensor tensor{entry.name, entry.dtype, entry.shape, {}};
    tensor.bytes.resize(entry.end - entry.begin);
    if (!tensor.bytes.empty()) {
      std::memcpy(tensor.bytes.data(), file_bytes.data() + data_start + entry.begin,
                  tensor.bytes.size());
    }
    tensors.push_back(std::move(tensor));
  }
  return MakeContents(source, std::move(header.second), std::move(tensors));
}

absl::StatusOr<SafetensorsContents> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(const ReadOnlyFile file, ReadOnlyFile::Open(path));
  const std::string source = absl::StrCat("safetensors file '", path, "'");
  auto read = [&](uint64_t offset, uint64_t size) -> absl::StatusOr<std::string> {
    std::string bytes(size, '\0');
    RETURN_IF_ERROR(file.ReadAt(
        offset, absl::MakeSpan(reinterpret_cast<std::byte*>(bytes.data()), bytes.size())));
    return bytes;
  };
  ASSIGN_OR_RETURN(auto header, ReadHeader(source, file.size(), read));
  const uint64_t data_start = header.first;
  std::vector<LoadedTensor> tensors;
  tensors.reserve(header.second.entries.size());
  for (const HeaderEntry& entry : header.second.entries) {
    LoadedTensor tensor{entry.name, entry.dtype, entry.shape, {}};
    tensor.bytes.resize(entry.end - entry.begin);
    RETURN_IF_ERROR(file.ReadAt(data_start + entry.begin, absl::MakeSpan(tensor.bytes)));
    tensors.push_back(std::move(tensor));
  }
  return MakeContents(source, std::move(header.second), std::move(tensors));
}

}  // namespace trident::checkpoint
