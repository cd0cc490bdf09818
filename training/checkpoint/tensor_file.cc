#include "training/checkpoint/tensor_file.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/check.h"
#include "core/io/atomic_file.h"
#include "core/io/crc32c.h"
#include "core/io/file_util.h"
#include "core/io/little_endian.h"
#include "core/status_macros.h"

namespace trident::checkpoint {

using ::trident::io::AppendLittleEndian;
using ::trident::io::AtomicFileWriter;
using ::trident::io::Crc32c;
using ::trident::io::Crc32cExtend;
using ::trident::io::LoadLittleEndian;
using ::trident::io::ReadOnlyFile;

namespace {

constexpr absl::string_view kMagic("\x89TRDTNS\n", 8);
constexpr absl::string_view kTrailerMagic("\x89TRDEND\n", 8);
constexpr uint64_t kPrefixSize = 24;   // magic, version, header size, file size
constexpr uint64_t kCrcSize = 4;
constexpr uint64_t kTrailerSize = 20;  // magic, file size, file CRC
constexpr uint64_t kSmallestFile = kPrefixSize + kCrcSize + kTrailerSize;
constexpr uint32_t kMaxRank = 32;
constexpr uint32_t kMaxNameLength = 4096;
// Name length, a one-byte name, dtype, rank, reserved, offset, size, CRC.
constexpr uint64_t kMinEntrySize = 4 + 1 + 1 + 1 + 2 + 8 + 8 + 4;

// On-disk dtype codes, fixed here rather than tied to the enum's values.
uint8_t DTypeCode(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 1;
    case DType::kBFloat16:
      return 2;
    case DType::kFloat16:
      return 3;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 5;
  }
  return 0;
}

absl::StatusOr<DType> DTypeFromCode(uint8_t code) {
  switch (code) {
    case 1:
      return DType::kFloat32;
    case 2:
      return DType::kBFloat16;
    case 3:
      return DType::kFloat16;
    case 4:
      return DType::kInt32;
    case 5:
      return DType::kInt64;
  }
  return absl::DataLossError(absl::StrCat("unknown dtype code ", code));
}

uint64_t AlignUp(uint64_t value) {
  return (value + kTensorFileAlignment - 1) / kTensorFileAlignment * kTensorFileAlignment;
}

absl::Span<std::byte> AsWritableBytes(std::string& text) {
  return absl::MakeSpan(reinterpret_cast<std::byte*>(text.data()), text.size());
}

// One entry of the header, as stored.
struct Entry {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t crc = 0;
};

std::string EncodeHeader(absl::Span<const Entry> entries) {
  std::string header;
  AppendLittleEndian<uint32_t>(static_cast<uint32_t>(entries.size()), &header);
  for (const Entry& entry : entries) {
    AppendLittleEndian<uint32_t>(static_cast<uint32_t>(entry.name.size()), &header);
    header += entry.name;
    header.push_back(static_cast<char>(DTypeCode(entry.dtype)));
    header.push_back(static_cast<char>(entry.shape.size()));
    AppendLittleEndian<uint16_t>(0, &header);
    for (const int64_t dim : entry.shape) {
      AppendLittleEndian<uint64_t>(static_cast<uint64_t>(dim), &header);
    }
    AppendLittleEndian<uint64_t>(entry.offset, &header);
    AppendLittleEndian<uint64_t>(entry.size, &header);
    AppendLittleEndian<uint32_t>(entry.crc, &header);
  }
  return header;
}

// Reads fixed-width fields from the header, refusing to run past its end.
class HeaderCursor {
 public:
  explicit HeaderCursor(absl::string_view bytes) : bytes_(bytes) {}

  template <typename Unsigned>
  absl::StatusOr<Unsigned> Read(absl::string_view field) {
    if (bytes_.size() - position_ < sizeof(Unsigned)) return Overrun(field);
    const Unsigned value = LoadLittleEndian<Unsigned>(bytes_.data() + position_);
    position_ += sizeof(Unsigned);
    return value;
  }

  absl::StatusOr<std::string> ReadString(size_t length, absl::string_view field) {
    if (bytes_.size() - position_ < length) return Overrun(field);
    std::string value(bytes_.substr(position_, length));
    position_ += length;
    return value;
  }

  size_t remaining() const { return bytes_.size() - position_; }

 private:
  absl::Status Overrun(absl::string_view field) const {
    return absl::DataLossError(absl::StrCat("header ends inside field '", field, "' at byte ",
                                            position_, " of ", bytes_.size()));
  }

  absl::string_view bytes_;
  size_t position_ = 0;
};

// Parses and validates the header entries (not yet the payloads).
absl::StatusOr<std::vector<Entry>> ParseHeader(absl::string_view header, uint64_t data_begin,
                                               uint64_t data_end) {
  HeaderCursor cursor(header);
  ASSIGN_OR_RETURN(const uint32_t count, cursor.Read<uint32_t>("tensor count"));
  // A count beyond what the header can hold is corrupt; this check also bounds
  // the reservation below.
  if (count > cursor.remaining() / kMinEntrySize) {
    return absl::DataLossError(absl::StrCat("header claims ", count, " tensors in ",
                                            header.size(), " bytes"));
  }
  std::vector<Entry> entries;
  entries.reserve(count);
  absl::flat_hash_set<std::string> names;
  uint64_t previous_end = data_begin;
  for (uint32_t i = 0; i < count; ++i) {
    Entry entry;
    const std::string which = absl::StrCat("tensor #", i);
    ASSIGN_OR_RETURN(const uint32_t name_length, cursor.Read<uint32_t>("name length"));
    if (name_length == 0 || name_length > kMaxNameLength) {
      return absl::DataLossError(absl::StrCat(which, " has name length ", name_length,
                                              "; it must be in [1, ", kMaxNameLength, "]"));
    }
    ASSIGN_OR_RETURN(entry.name, cursor.ReadString(name_length, "name"));
    const std::string quoted = absl::StrCat("tensor '", entry.name, "'");
    ASSIGN_OR_RETURN(const uint8_t dtype_code, cursor.Read<uint8_t>("dtype"));
    absl::StatusOr<DType> dtype = DTypeFromCode(dtype_code);
    if (!dtype.ok()) return absl::DataLossError(absl::StrCat(quoted, " has ", dtype.status().message()));
    entry.dtype = *dtype;
    ASSIGN_OR_RETURN(const uint8_t rank, cursor.Read<uint8_t>("rank"));
    ASSIGN_OR_RETURN(const uint16_t reserved, cursor.Read<uint16_t>("reserved"));
    if (rank > kMaxRank || reserved != 0) {
      return absl::DataLossError(absl::StrCat(quoted, " has rank ", rank, " and reserved field ",
                                              reserved, "; rank must be <= ", kMaxRank,
                                              " and reserved 0"));
    }
    for (uint8_t d = 0; d < rank; ++d) {
      ASSIGN_OR_RETURN(const uint64_t dim, cursor.Read<uint64_t>("dimension"));
      entry.shape.push_back(static_cast<int64_t>(dim));
    }
    ASSIGN_OR_RETURN(entry.offset, cursor.Read<uint64_t>("offset"));
    ASSIGN_OR_RETURN(entry.size, cursor.Read<uint64_t>("size"));
    ASSIGN_OR_RETURN(entry.crc, cursor.Read<uint32_t>("crc"));

    const absl::StatusOr<int64_t> elements = NumElements(entry.shape);
    if (!elements.ok()) {
      return absl::DataLossError(absl::StrCat(quoted, ": ", elements.status().message()));
    }
    const uint64_t element_size = DTypeSize(entry.dtype);
    if (static_cast<uint64_t>(*elements) > std::numeric_limits<uint64_t>::max() / element_size ||
        static_cast<uint64_t>(*elements) * element_size != entry.size) {
      return absl::DataLossError(absl::StrCat(quoted, " has ", entry.size, " bytes, but shape ",
                                              ShapeToString(entry.shape), " of ",
                                              DTypeName(entry.dtype), " needs ",
                                              *elements, " elements"));
    }
    if (entry.offset % kTensorFileAlignment != 0 || entry.offset < previous_end ||
        entry.offset > data_end || entry.size > data_end - entry.offset) {
      return absl::DataLossError(absl::StrFormat(
          "%s has bytes [%d, %d), which must be %d-byte aligned, after the previous tensor "
          "(ends at %d) and inside the data region [%d, %d)",
          quoted, entry.offset, entry.offset + entry.size, kTensorFileAlignment, previous_end,
          data_begin, data_end));
    }
    previous_end = entry.offset + entry.size;
    if (!names.insert(entry.name).second) {
      return absl::DataLossError(absl::StrCat("tensor name '", entry.name,
                                              "' appears more than once"));
    }
    entries.push_back(std::move(entry));
  }
  if (cursor.remaining() != 0) {
    return absl::DataLossError(
        absl::StrCat("header has ", cursor.remaining(), " unexpected bytes after the last tensor"));
  }
  return entries;
}

// What the fixed-size parts of a file say, once they are checked.
struct CheckedFrame {
  std::string head;  // prefix + header + header CRC, the first bytes of the file
  uint64_t file_size = 0;
  uint64_t header_size = 0;
  uint32_t trailer_crc = 0;
};

// "tensor file '<path>'" prefix for every error from the reader.
absl::Status FileError(const std::string& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("tensor file '", path, "': ", status.message()));
}

// Checks magic, version, header placement and CRC, size and trailer.
absl::StatusOr<CheckedFrame> CheckFrame(const ReadOnlyFile& file) {
  const uint64_t actual_size = file.size();
  if (actual_size < kMagic.size()) {
    return absl::DataLossError(absl::StrCat("is truncated: it has ", actual_size,
                                            " bytes, the smallest valid file has ",
                                            kSmallestFile));
  }
  CheckedFrame frame;
  frame.head.resize(std::min(actual_size, kPrefixSize));
  RETURN_IF_ERROR(file.ReadAt(0, AsWritableBytes(frame.head)));
  if (absl::string_view(frame.head).substr(0, kMagic.size()) != kMagic) {
    return absl::DataLossError("is not a trident tensor file (its first 8 bytes are not the magic)");
  }
  if (actual_size < kSmallestFile) {
    return absl::DataLossError(absl::StrCat("is truncated: it has ", actual_size,
                                            " bytes, the smallest valid file has ",
                                            kSmallestFile));
  }
  const uint32_t version = LoadLittleEndian<uint32_t>(frame.head.data() + 8);
  if (version != kTensorFileVersion) {
    return absl::FailedPreconditionError(absl::StrCat("has format version ", version,
                                                      "; this program reads version ",
                                                      kTensorFileVersion));
  }
  frame.header_size = LoadLittleEndian<uint32_t>(frame.head.data() + 12);
  frame.file_size = LoadLittleEndian<uint64_t>(frame.head.data() + 16);
  const uint64_t head_size = kPrefixSize + frame.header_size + kCrcSize;
  if (head_size + kTrailerSize > actual_size) {
    return absl::DataLossError(absl::StrCat("is truncated: its header needs ",
                                            head_size + kTrailerSize, " bytes, the file has ",
                                            actual_size));
  }
  frame.head.resize(head_size);
  RETURN_IF_ERROR(file.ReadAt(kPrefixSize, AsWritableBytes(frame.head).subspan(kPrefixSize)));
  const uint32_t stored_header_crc = LoadLittleEndian<uint32_t>(frame.head.data() + head_size - 4);
  const uint32_t header_crc = Crc32c(frame.head.data(), head_size - kCrcSize);
  if (stored_header_crc != header_crc) {
    return absl::DataLossError(absl::StrFormat(
        "header is corrupted: its CRC-32C is 0x%08x, stored 0x%08x", header_crc,
        stored_header_crc));
  }
  if (frame.file_size != actual_size) {
    return absl::DataLossError(absl::StrCat(
        actual_size < frame.file_size ? "is truncated" : "has extra bytes", ": expected ",
        frame.file_size, " bytes (as its header records), the file has ", actual_size));
  }
  std::string trailer(kTrailerSize, '\0');
  RETURN_IF_ERROR(file.ReadAt(actual_size - kTrailerSize, AsWritableBytes(trailer)));
  if (absl::string_view(trailer).substr(0, kTrailerMagic.size()) != kTrailerMagic ||
      LoadLittleEndian<uint64_t>(trailer.data() + 8) != frame.file_size) {
    return absl::DataLossError("trailer is damaged (bad end magic or size)");
  }
  frame.trailer_crc = LoadLittleEndian<uint32_t>(trailer.data() + 16);
  return frame;
}

// Feeds bytes [begin, end) of the file into `crc`, in bounded chunks.
absl::Status ExtendCrcFromFile(const ReadOnlyFile& file, uint64_t begin, uint64_t end,
                               uint32_t* crc) {
  std::array<std::byte, 1 << 16> chunk;
  while (begin < end) {
    const size_t length = static_cast<size_t>(std::min<uint64_t>(chunk.size(), end - begin));
    RETURN_IF_ERROR(file.ReadAt(begin, absl::MakeSpan(chunk.data(), length)));
    *crc = Crc32cExtend(*crc, chunk.data(), length);
    begin += length;
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorSet> ReadVerified(const ReadOnlyFile& file) {
  const std::string& path = file.path();
  ASSIGN_OR_RETURN(const CheckedFrame frame, CheckFrame(file));
  const uint64_t data_begin = frame.head.size();
  const uint64_t data_end = frame.file_size - kTrailerSize;
  ASSIGN_OR_RETURN(std::vector<Entry> entries,
                   ParseHeader(absl::string_view(frame.head).substr(kPrefixSize, frame.header_size),
                               data_begin, data_end));

  uint32_t file_crc = Crc32c(frame.head);
  uint64_t position = data_begin;
  std::vector<LoadedTensor> tensors;
  tensors.reserve(entries.size());
  for (Entry& entry : entries) {
    RETURN_IF_ERROR(ExtendCrcFromFile(file, position, entry.offset, &file_crc));
    LoadedTensor tensor;
    tensor.bytes.resize(entry.size);
    RETURN_IF_ERROR(file.ReadAt(entry.offset, absl::MakeSpan(tensor.bytes)));
    const uint32_t crc = Crc32c(tensor.bytes.data(), tensor.bytes.size());
    if (crc != entry.crc) {
      return absl::DataLossError(absl::StrFormat(
          "tensor '%s' is corrupted: the CRC-32C of its %d bytes at offset %d is 0x%08x, "
          "stored 0x%08x",
          entry.name, entry.size, entry.offset, crc, entry.crc));
    }
    file_crc = Crc32cExtend(file_crc, tensor.bytes.data(), tensor.bytes.size());
    position = entry.offset + entry.size;
    tensor.name = std::move(entry.name);
    tensor.dtype = entry.dtype;
    tensor.shape = std::move(entry.shape);
    tensors.push_back(std::move(tensor));
  }
  RETURN_IF_ERROR(ExtendCrcFromFile(file, position, frame.file_size - kCrcSize, &file_crc));
  if (file_crc != frame.trailer_crc) {
    return absl::DataLossError(absl::StrFormat(
        "is corrupted outside the tensors: its whole-file CRC-32C is 0x%08x, stored 0x%08x",
        file_crc, frame.trailer_crc));
  }
  return TensorSet::Create(absl::StrCat("tensor file '", path, "'"), std::move(tensors));
}

}  // namespace

absl::StatusOr<TensorFileSummary> WriteTensorFile(const std::string& path,
                                                  absl::Span<const TensorBlob> tensors) {
  RETURN_IF_ERROR(ValidateBlobs(tensors));
  for (const TensorBlob& blob : tensors) {
    if (blob.name.size() > kMaxNameLength || blob.shape.size() > kMaxRank) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", blob.name, "' has a name of ", blob.name.size(), " bytes and rank ",
          blob.shape.size(), "; the limits are ", kMaxNameLength, " and ", kMaxRank));
    }
  }
  if (tensors.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("too many tensors: ", tensors.size()));
  }

  // Lay out the file: the header's size does not depend on the offsets it holds.
  std::vector<Entry> entries(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    entries[i].name = tensors[i].name;
    entries[i].dtype = tensors[i].dtype;
    entries[i].shape = tensors[i].shape;
    entries[i].size = tensors[i].bytes.size();
    entries[i].crc = Crc32c(tensors[i].bytes);
  }
  const uint64_t header_size = EncodeHeader(entries).size();
  if (header_size > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor file header of ", header_size,
                                                   " bytes exceeds the 4 GiB limit"));
  }
  uint64_t position = kPrefixSize + header_size + kCrcSize;
  for (Entry& entry : entries) {
    entry.offset = AlignUp(position);
    position = entry.offset + entry.size;
  }
  const uint64_t file_size = position + kTrailerSize;

  std::string head(kMagic);
  AppendLittleEndian<uint32_t>(kTensorFileVersion, &head);
  AppendLittleEndian<uint32_t>(static_cast<uint32_t>(header_size), &head);
  AppendLittleEndian<uint64_t>(file_size, &head);
  head += EncodeHeader(entries);
  AppendLittleEndian<uint32_t>(Crc32c(head), &head);

  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Create(path));
  RETURN_IF_ERROR(writer.Append(head));
  uint32_t file_crc = Crc32c(head);
  position = head.size();
  static constexpr std::array<char, kTensorFileAlignment> kZeros{};
  for (size_t i = 0; i < tensors.size(); ++i) {
    const absl::string_view padding(kZeros.data(), entries[i].offset - position);
    RETURN_IF_ERROR(writer.Append(padding));
    file_crc = Crc32cExtend(file_crc, padding.data(), padding.size());
    RETURN_IF_ERROR(writer.Append(tensors[i].bytes));
    file_crc = Crc32cExtend(file_crc, tensors[i].bytes.data(), tensors[i].bytes.size());
    position = entries[i].offset + entries[i].size;
  }
  std::string trailer(kTrailerMagic);
  AppendLittleEndian<uint64_t>(file_size, &trailer);
  file_crc = Crc32cExtend(file_crc, trailer.data(), trailer.size());
  AppendLittleEndian<uint32_t>(file_crc, &trailer);
  RETURN_IF_ERROR(writer.Append(trailer));
  TRIDENT_CHECK_EQ(writer.bytes_written(), file_size);
  RETURN_IF_ERROR(writer.Commit());
  return TensorFileSummary{file_size, file_crc};
}

absl::StatusOr<TensorSet> ReadTensorFile(const std::string& path) {
  ASSIGN_OR_RETURN(const ReadOnlyFile file, ReadOnlyFile::Open(path));  // names the path
  absl::StatusOr<TensorSet> tensors = ReadVerified(file);
  if (!tensors.ok()) return FileError(path, tensors.status());
  return tensors;
}

absl::StatusOr<TensorFileSummary> ReadTensorFileSummary(const std::string& path) {
  ASSIGN_OR_RETURN(const ReadOnlyFile file, ReadOnlyFile::Open(path));  // names the path
  const absl::StatusOr<CheckedFrame> frame = CheckFrame(file);
  if (!frame.ok()) return FileError(path, frame.status());
  return TensorFileSummary{frame->file_size, frame->trailer_crc};
}

struct TensorFileIndex::File {
  ReadOnlyFile file;
};

TensorFileIndex::TensorFileIndex(std::unique_ptr<File> file, TensorFileSummary summary,
                                 std::vector<Tensor> tensors)
    : file_(std::move(file)), summary_(summary), tensors_(std::move(tensors)) {}
TensorFileIndex::TensorFileIndex(TensorFileIndex&&) noexcept = default;
TensorFileIndex& TensorFileIndex::operator=(TensorFileIndex&&) noexcept = default;
TensorFileIndex::~TensorFileIndex() = default;

const std::string& TensorFileIndex::path() const { return file_->file.path(); }

absl::StatusOr<TensorFileIndex> TensorFileIndex::Open(const std::string& path) {
  ASSIGN_OR_RETURN(ReadOnlyFile file, ReadOnlyFile::Open(path));  // names the path
  const absl::StatusOr<CheckedFrame> frame = CheckFrame(file);
  if (!frame.ok()) return FileError(path, frame.status());
  const uint64_t data_begin = frame->head.size();
  const uint64_t data_end = frame->file_size - kTrailerSize;
  absl::StatusOr<std::vector<Entry>> entries = ParseHeader(
      absl::string_view(frame->head).substr(kPrefixSize, frame->header_size), data_begin, data_end);
  if (!entries.ok()) return FileError(path, entries.status());
  std::vector<Tensor> tensors;
  tensors.reserve(entries->size());
  for (Entry& entry : *entries) {
    tensors.push_back(Tensor{std::move(entry.name), entry.dtype, std::move(entry.shape),
                             entry.offset, entry.size, entry.crc});
  }
  auto owned = std::make_unique<File>(File{std::move(file)});
  return TensorFileIndex(std::move(owned), TensorFileSummary{frame->file_size, frame->trailer_crc},
                         std::move(tensors));
}

const TensorFileIndex::Tensor* TensorFileIndex::Find(const std::string& name) const {
  for (const Tensor& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

absl::Status TensorFileIndex::ReadRange(const std::string& name, uint64_t byte_offset,
                                        absl::Span<std::byte> destination) const {
  const Tensor* tensor = Find(name);
  if (tensor == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor file '", path(), "' has no tensor '", name, "'"));
  }
  if (byte_offset > tensor->size || destination.size() > tensor->size - byte_offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "tensor file '", path(), "': bytes [", byte_offset, ", ", byte_offset + destination.size(),
        ") are outside tensor '", name, "' (", tensor->size, " bytes)"));
  }
  const absl::Status read = file_->file.ReadAt(tensor->offset + byte_offset, destination);
  if (!read.ok()) return FileError(path(), read);
  return absl::OkStatus();
}

absl::Status TensorFileIndex::VerifyTensor(const std::string& name) const {
  const Tensor* tensor = Find(name);
  if (tensor == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("tensor file '", path(), "' has no tensor '", name, "'"));
  }
  uint32_t crc = 0;
  RETURN_IF_ERROR(ExtendCrcFromFile(file_->file, tensor->offset, tensor->offset + tensor->size,
                                    &crc));
  if (crc != tensor->crc32c) {
    return absl::DataLossError(absl::StrFormat(
        "tensor file '%s': tensor '%s' is corrupted: the CRC-32C of its %d bytes is 0x%08x, "
        "stored 0x%08x",
        path(), name, tensor->size, crc, tensor->crc32c));
  }
  return absl::OkStatus();
}

absl::Status TensorFileIndex::VerifyFile() const {
  uint32_t crc = 0;
  RETURN_IF_ERROR(ExtendCrcFromFile(file_->file, 0, summary_.file_size - kCrcSize, &crc));
  if (crc != summary_.file_crc32c) {
    return absl::DataLossError(absl::StrFormat(
        "tensor file '%s' is corrupted: its whole-file CRC-32C is 0x%08x, stored 0x%08x", path(),
        crc, summary_.file_crc32c));
  }
  return absl::OkStatus();
}

}  // namespace trident::checkpoint
