#include "training/checkpoint/tensor_file.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/io/crc32c.h"
#include "core/io/file_util.h"
#include "core/io/little_endian.h"
#include "gtest/gtest.h"
#include "training/checkpoint/tensor_blob.h"
#include "training/checkpoint/test_util.h"

namespace trident::checkpoint {

using ::trident::io::AppendLittleEndian;
using ::trident::io::Crc32c;
using ::trident::io::JoinPath;
using ::trident::io::ListDirectory;
using ::trident::io::LoadLittleEndian;

namespace {

using testing::FlipByte;
using testing::FreshTestDir;
using testing::PatternBytes;
using testing::ReadWholeFile;
using testing::TruncateFile;
using testing::WriteWholeFile;

// Owns the bytes the blobs point to.
struct Fixture {
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorBlob> blobs;

  void Add(std::string name, DType dtype, std::vector<int64_t> shape) {
    int64_t elements = 1;
    for (const int64_t d : shape) elements *= d;
    storage.push_back(PatternBytes(elements * DTypeSize(dtype), storage.size() + 1));
    blobs.push_back(TensorBlob{std::move(name), dtype, std::move(shape), storage.back()});
  }
};

Fixture AllKinds() {
  Fixture f;
  f.Add("param/wte", DType::kFloat32, {50, 16});
  f.Add("scalar", DType::kFloat32, {});
  f.Add("empty", DType::kBFloat16, {0});
  f.Add("empty3d", DType::kInt64, {3, 0, 2});
  f.Add("adam_m/h.0.attn.c_attn.weight", DType::kBFloat16, {2, 3, 5});
  f.Add("fp16_vector", DType::kFloat16, {7});
  f.Add("tokens", DType::kInt32, {1, 9});
  f.Add("data/position", DType::kInt64, {3});
  f.Add("caf\xc3\xa9/\xe2\x82\xac", DType::kFloat32, {1});  // UTF-8 name
  f.Add("big", DType::kFloat32, {300, 257});
  return f;
}

void ExpectSame(const TensorBlob& expected, const LoadedTensor& actual) {
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.dtype, expected.dtype) << expected.name;
  EXPECT_EQ(actual.shape, expected.shape) << expected.name;
  ASSERT_EQ(actual.bytes.size(), expected.bytes.size()) << expected.name;
  EXPECT_TRUE(std::equal(actual.bytes.begin(), actual.bytes.end(), expected.bytes.begin()))
      << expected.name;
}

// Writes AllKinds() to a fresh file and returns its path.
std::string WriteSample(absl::string_view test_name, Fixture* fixture) {
  *fixture = AllKinds();
  const std::string path = JoinPath(FreshTestDir(test_name), "sample.tensors");
  const absl::StatusOr<TensorFileSummary> written = WriteTensorFile(path, fixture->blobs);
  EXPECT_TRUE(written.ok()) << written.status();
  return path;
}

void ExpectError(const std::string& path, absl::StatusCode code,
                 std::vector<std::string> fragments) {
  const absl::StatusOr<TensorSet> read = ReadTensorFile(path);
  ASSERT_FALSE(read.ok()) << "accepted a damaged file";
  EXPECT_EQ(read.status().code(), code) << read.status();
  fragments.push_back(path);
  for (const std::string& fragment : fragments) {
    EXPECT_TRUE(absl::StrContains(read.status().message(), fragment))
        << "missing '" << fragment << "' in: " << read.status();
  }
}

uint64_t HeaderEnd(const std::string& contents) {
  return 24 + LoadLittleEndian<uint32_t>(contents.data() + 12) + 4;
}

TEST(TensorFileIndexTest, ReadsByteRangesOfOneTensorWithoutThePayloads) {
  Fixture fixture;
  const std::string path = WriteSample("tf_index_ranges", &fixture);
  const absl::StatusOr<TensorFileIndex> index = TensorFileIndex::Open(path);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->tensors().size(), fixture.blobs.size());
  const absl::StatusOr<TensorFileSummary> summary = ReadTensorFileSummary(path);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(index->summary().file_size, summary->file_size);
  EXPECT_EQ(index->summary().file_crc32c, summary->file_crc32c);
  for (const TensorBlob& blob : fixture.blobs) {
    const TensorFileIndex::Tensor* tensor = index->Find(blob.name);
    ASSERT_NE(tensor, nullptr) << blob.name;
    EXPECT_EQ(tensor->shape, blob.shape);
    EXPECT_EQ(tensor->dtype, blob.dtype);
    EXPECT_EQ(tensor->size, blob.bytes.size());
    EXPECT_TRUE(index->VerifyTensor(blob.name).ok()) << blob.name;
    // A middle window, and the whole tensor.
    const uint64_t begin = blob.bytes.size() / 3;
    const uint64_t length = blob.bytes.size() / 2;
    std::vector<std::byte> window(length);
    ASSERT_TRUE(index->ReadRange(blob.name, begin, absl::MakeSpan(window)).ok());
    EXPECT_TRUE(std::equal(window.begin(), window.end(), blob.bytes.begin() + begin)) << blob.name;
    std::vector<std::byte> whole(blob.bytes.size());
    ASSERT_TRUE(index->ReadRange(blob.name, 0, absl::MakeSpan(whole)).ok());
    EXPECT_TRUE(std::equal(whole.begin(), whole.end(), blob.bytes.begin())) << blob.name;
  }
}

TEST(TensorFileIndexTest, RefusesRangesOutsideTheTensorAndUnknownNames) {
  Fixture fixture;
  const std::string path = WriteSample("tf_index_refusals", &fixture);
  const absl::StatusOr<TensorFileIndex> index = TensorFileIndex::Open(path);
  ASSERT_TRUE(index.ok()) << index.status();
  std::vector<std::byte> four(4);
  const absl::Status past = index->ReadRange("fp16_vector", 12, absl::MakeSpan(four));  // 14 bytes
  EXPECT_EQ(past.code(), absl::StatusCode::kOutOfRange) << past;
  EXPECT_TRUE(absl::StrContains(past.message(), path)) << past;
  EXPECT_TRUE(absl::StrContains(past.message(), "fp16_vector")) << past;
  const absl::Status missing = index->ReadRange("no/such", 0, absl::MakeSpan(four));
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_TRUE(absl::StrContains(missing.message(), "no/such")) << missing;
}

TEST(TensorFileIndexTest, RefusesADamagedHeaderAndFindsADamagedTensor) {
  Fixture fixture;
  const std::string path = WriteSample("tf_index_damage", &fixture);
  const std::string contents = ReadWholeFile(path);
  // A payload byte of "big": Open only reads the header, VerifyTensor notices.
  {
    const absl::StatusOr<TensorFileIndex> clean = TensorFileIndex::Open(path);
    ASSERT_TRUE(clean.ok());
    const uint64_t offset = clean->Find("big")->offset + 100;
    FlipByte(path, offset);
    const absl::StatusOr<TensorFileIndex> index = TensorFileIndex::Open(path);
    ASSERT_TRUE(index.ok()) << index.status();
    const absl::Status verified = index->VerifyTensor("big");
    EXPECT_EQ(verified.code(), absl::StatusCode::kDataLoss) << verified;
    EXPECT_TRUE(absl::StrContains(verified.message(), "'big'")) << verified;
    EXPECT_TRUE(absl::StrContains(verified.message(), path)) << verified;
    EXPECT_TRUE(index->VerifyTensor("scalar").ok());
    const absl::Status whole = index->VerifyFile();
    EXPECT_EQ(whole.code(), absl::StatusCode::kDataLoss) << whole;
    EXPECT_TRUE(absl::StrContains(whole.message(), path)) << whole;
    FlipByte(path, offset);
    EXPECT_TRUE(TensorFileIndex::Open(path)->VerifyFile().ok());
  }
  // A header byte: refused by Open, naming the file.
  FlipByte(path, 30);
  const absl::StatusOr<TensorFileIndex> index = TensorFileIndex::Open(path);
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), absl::StatusCode::kDataLoss) << index.status();
  EXPECT_TRUE(absl::StrContains(index.status().message(), path)) << index.status();
  EXPECT_TRUE(absl::StrContains(index.status().message(), "header")) << index.status();
}

TEST(TensorFileTest, RoundTripsAllDTypesAndShapes) {
  Fixture fixture;
  const std::string path = WriteSample("tf_round_trip", &fixture);
  const absl::StatusOr<TensorSet> read = ReadTensorFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), fixture.blobs.size());
  for (size_t i = 0; i < fixture.blobs.size(); ++i) {
    ExpectSame(fixture.blobs[i], read->tensors()[i]);  // file order kept
    const LoadedTensor* found = read->Find(fixture.blobs[i].name);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found, &read->tensors()[i]);
  }
  EXPECT_EQ(read->Find("scalar")->num_elements(), 1);
  EXPECT_EQ(read->Find("empty3d")->num_elements(), 0);
  EXPECT_EQ(read->source(), absl::StrCat("tensor file '", path, "'"));
}

TEST(TensorFileTest, PayloadsAre64ByteAligned) {
  Fixture fixture;
  const std::string path = WriteSample("tf_aligned", &fixture);
  const std::string contents = ReadWholeFile(path);
  for (const TensorBlob& blob : fixture.blobs) {
    if (blob.bytes.size() < 4) continue;  // too short to locate uniquely
    const size_t at = contents.find(
        std::string(reinterpret_cast<const char*>(blob.bytes.data()), blob.bytes.size()));
    ASSERT_NE(at, std::string::npos) << blob.name;
    EXPECT_EQ(at % kTensorFileAlignment, 0u) << blob.name << " at " << at;
  }
}

TEST(TensorFileTest, SummaryMatchesWriterAndFile) {
  Fixture fixture = AllKinds();
  const std::string path = JoinPath(FreshTestDir("tf_summary"), "s.tensors");
  const absl::StatusOr<TensorFileSummary> written = WriteTensorFile(path, fixture.blobs);
  ASSERT_TRUE(written.ok()) << written.status();
  const std::string contents = ReadWholeFile(path);
  EXPECT_EQ(written->file_size, contents.size());
  EXPECT_EQ(written->file_crc32c, Crc32c(contents.data(), contents.size() - 4));
  const absl::StatusOr<TensorFileSummary> summary = ReadTensorFileSummary(path);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->file_size, written->file_size);
  EXPECT_EQ(summary->file_crc32c, written->file_crc32c);
}

TEST(TensorFileTest, EmptyFileRoundTrips) {
  const std::string path = JoinPath(FreshTestDir("tf_empty"), "none.tensors");
  ASSERT_TRUE(WriteTensorFile(path, {}).ok());
  const absl::StatusOr<TensorSet> read = ReadTensorFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->size(), 0u);
}

TEST(TensorFileTest, TruncationAnywhereIsDetected) {
  Fixture fixture;
  const std::string path = WriteSample("tf_truncated", &fixture);
  const std::string contents = ReadWholeFile(path);
  const uint64_t size = contents.size();
  const uint64_t header_end = HeaderEnd(contents);
  for (const uint64_t cut : {uint64_t{0}, uint64_t{5}, uint64_t{8}, uint64_t{23}, uint64_t{40},
                             header_end - 1, header_end, header_end + 100, size / 2, size - 21,
                             size - 20, size - 1}) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut, " of ", size));
    WriteWholeFile(path, contents);
    TruncateFile(path, cut);
    ExpectError(path, absl::StatusCode::kDataLoss, {"truncated"});
    if (cut > header_end) {
      ExpectError(path, absl::StatusCode::kDataLoss,
                  {absl::StrCat("expected ", size, " bytes"), absl::StrCat("has ", cut)});
    }
    EXPECT_FALSE(ReadTensorFileSummary(path).ok());
  }
}

TEST(TensorFileTest, ExtraBytesAreDetected) {
  Fixture fixture;
  const std::string path = WriteSample("tf_extra", &fixture);
  WriteWholeFile(path, ReadWholeFile(path) + "x");
  ExpectError(path, absl::StatusCode::kDataLoss, {"extra bytes"});
}

TEST(TensorFileTest, FlippedPayloadByteNamesTheTensor) {
  Fixture fixture;
  const std::string path = WriteSample("tf_flip_payload", &fixture);
  const std::string contents = ReadWholeFile(path);
  const TensorBlob& victim = fixture.blobs[4];  // adam_m/h.0.attn.c_attn.weight
  const size_t at = contents.find(std::string(
      reinterpret_cast<const char*>(victim.bytes.data()), victim.bytes.size()));
  ASSERT_NE(at, std::string::npos);
  FlipByte(path, at + 7);
  ExpectError(path, absl::StatusCode::kDataLoss,
              {"tensor 'adam_m/h.0.attn.c_attn.weight' is corrupted", "CRC-32C"});
  // The trailer is intact, so the cheap summary cannot tell; the full read does.
  EXPECT_TRUE(ReadTensorFileSummary(path).ok());
}

TEST(TensorFileTest, FlippedHeaderByteIsDetected) {
  Fixture fixture;
  const std::string path = WriteSample("tf_flip_header", &fixture);
  const std::string contents = ReadWholeFile(path);
  const size_t name_at = contents.find("param/wte");
  ASSERT_NE(name_at, std::string::npos);
  for (const uint64_t offset : {uint64_t{16} /* file size */, uint64_t{24} /* count */,
                                uint64_t{name_at + 2}, HeaderEnd(contents) - 6 /* a CRC */,
                                HeaderEnd(contents) - 1 /* header CRC */}) {
    SCOPED_TRACE(offset);
    WriteWholeFile(path, contents);
    FlipByte(path, offset);
    ExpectError(path, absl::StatusCode::kDataLoss, {"header is corrupted"});
    EXPECT_FALSE(ReadTensorFileSummary(path).ok());
  }
}

TEST(TensorFileTest, MagicVersionPaddingAndTrailerAreChecked) {
  Fixture fixture;
  const std::string path = WriteSample("tf_frame", &fixture);
  const std::string contents = ReadWholeFile(path);
  const uint64_t size = contents.size();

  FlipByte(path, 1);
  ExpectError(path, absl::StatusCode::kDataLoss, {"not a trident tensor file"});

  WriteWholeFile(path, contents);
  FlipByte(path, 9);  // version 1 -> 257
  ExpectError(path, absl::StatusCode::kFailedPrecondition,
              {"format version 257", "reads version 1"});

  // Padding between the header and the first payload belongs to no tensor.
  WriteWholeFile(path, contents);
  ASSERT_NE(HeaderEnd(contents) % kTensorFileAlignment, 0u);
  FlipByte(path, HeaderEnd(contents));
  ExpectError(path, absl::StatusCode::kDataLoss, {"corrupted outside the tensors"});

  WriteWholeFile(path, contents);
  FlipByte(path, size - 18);  // trailer magic
  ExpectError(path, absl::StatusCode::kDataLoss, {"trailer is damaged"});

  WriteWholeFile(path, contents);
  FlipByte(path, size - 2);  // whole-file CRC
  ExpectError(path, absl::StatusCode::kDataLoss, {"whole-file CRC-32C"});
}

TEST(TensorFileTest, DuplicateNamesInFileAreRejected) {
  Fixture fixture;
  fixture.Add("layer.aa", DType::kFloat32, {2});
  fixture.Add("layer.ab", DType::kFloat32, {2});
  const std::string path = JoinPath(FreshTestDir("tf_duplicate"), "dup.tensors");
  ASSERT_TRUE(WriteTensorFile(path, fixture.blobs).ok());
  // Rename the second tensor to the first's name and re-seal both CRCs, as a
  // buggy writer would have done.
  std::string contents = ReadWholeFile(path);
  const size_t at = contents.find("layer.ab");
  ASSERT_NE(at, std::string::npos);
  contents[at + 7] = 'a';
  const uint64_t header_end = HeaderEnd(contents);
  std::string crc;
  AppendLittleEndian<uint32_t>(Crc32c(contents.data(), header_end - 4), &crc);
  contents.replace(header_end - 4, 4, crc);
  crc.clear();
  AppendLittleEndian<uint32_t>(Crc32c(contents.data(), contents.size() - 4), &crc);
  contents.replace(contents.size() - 4, 4, crc);
  WriteWholeFile(path, contents);
  ExpectError(path, absl::StatusCode::kDataLoss, {"'layer.aa' appears more than once"});
}

TEST(TensorFileTest, MissingFileNamesThePath) {
  const std::string path = JoinPath(FreshTestDir("tf_missing"), "absent.tensors");
  ExpectError(path, absl::StatusCode::kNotFound, {"No such file"});
}

TEST(TensorFileTest, WriterRejectsBadBlobs) {
  const std::string dir = FreshTestDir("tf_bad_blobs");
  const std::string path = JoinPath(dir, "bad.tensors");
  const std::vector<std::byte> eight(8);
  const auto write = [&](std::vector<TensorBlob> blobs) {
    return WriteTensorFile(path, blobs).status();
  };
  absl::Status status = write({{"a", DType::kFloat32, {2}, eight}, {"a", DType::kFloat32, {2}, eight}});
  EXPECT_TRUE(absl::IsInvalidArgument(status) && absl::StrContains(status.message(), "'a' appears more than once")) << status;
  status = write({{"w", DType::kFloat32, {3}, eight}});
  EXPECT_TRUE(absl::StrContains(status.message(), "tensor 'w' has 8 bytes, but shape [3] of fp32")) << status;
  status = write({{"w", DType::kInt64, {-1}, eight}});
  EXPECT_TRUE(absl::StrContains(status.message(), "dimension 0 = -1")) << status;
  status = write({{"", DType::kInt64, {1}, eight}});
  EXPECT_TRUE(absl::StrContains(status.message(), "empty name")) << status;
  status = write({{"huge", DType::kInt64, {1LL << 40, 1LL << 40}, eight}});
  EXPECT_TRUE(absl::StrContains(status.message(), "more elements than fit")) << status;
  // Nothing was written for any of them.
  EXPECT_TRUE(ListDirectory(dir)->empty());
}

TEST(TensorSetTest, ExpectationErrorsAreClear) {
  Fixture fixture;
  fixture.Add("h.0.attn.c_attn.weight", DType::kFloat32, {64, 192});
  const std::string path = JoinPath(FreshTestDir("tf_expect"), "e.tensors");
  ASSERT_TRUE(WriteTensorFile(path, fixture.blobs).ok());
  const absl::StatusOr<TensorSet> read = ReadTensorFile(path);
  ASSERT_TRUE(read.ok()) << read.status();

  absl::StatusOr<const LoadedTensor*> got =
      read->GetExpected("h.0.attn.c_attn.weight", DType::kFloat32, {64, 96});
  EXPECT_EQ(got.status().message(),
            absl::StrCat("tensor file '", path,
                         "' has tensor 'h.0.attn.c_attn.weight' with shape [64, 192], "
                         "expected [64, 96]"));
  got = read->GetExpected("h.0.attn.c_attn.weight", DType::kBFloat16, {64, 192});
  EXPECT_TRUE(absl::StrContains(got.status().message(), "with dtype fp32, expected bf16"))
      << got.status();
  got = read->GetExpected("h.1.attn.c_attn.weight", DType::kFloat32, {64, 192});
  EXPECT_TRUE(absl::IsNotFound(got.status()));
  EXPECT_TRUE(absl::StrContains(got.status().message(), "has no tensor 'h.1.attn.c_attn.weight'"));
  got = read->GetExpected("h.0.attn.c_attn.weight", DType::kFloat32, {64, 192});
  ASSERT_TRUE(got.ok()) << got.status();

  std::vector<float> destination(64 * 192);
  ASSERT_TRUE(read->CopyExpected("h.0.attn.c_attn.weight", DType::kFloat32, {64, 192},
                                 absl::MakeSpan(reinterpret_cast<std::byte*>(destination.data()),
                                                destination.size() * sizeof(float)))
                  .ok());
  EXPECT_EQ(std::memcmp(destination.data(), fixture.storage[0].data(), fixture.storage[0].size()), 0);
  std::vector<std::byte> too_small(10);
  EXPECT_FALSE(read->CopyExpected("h.0.attn.c_attn.weight", DType::kFloat32, {64, 192},
                                  absl::MakeSpan(too_small))
                   .ok());
}

}  // namespace
}  // namespace trident::checkpoint
