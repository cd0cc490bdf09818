#include "training/checkpoint/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/io/file_util.h"
#include "gtest/gtest.h"
#include "training/checkpoint/tensor_blob.h"
#include "training/checkpoint/test_util.h"

namespace trident::checkpoint {

using ::trident::io::JoinPath;
using ::trident::io::PathExists;

namespace {

using testing::FreshTestDir;
using testing::PatternBytes;
using testing::ReadWholeFile;
using testing::WriteWholeFile;

absl::Span<const std::byte> AsBytes(const void* data, size_t size) {
  return absl::MakeConstSpan(static_cast<const std::byte*>(data), size);
}

// The two-tensor golden file, computed by hand from the format description:
// F32 sorts before BF16 (the reference orders by dtype, descending), so "z"
// comes first although "a" < "z". The JSON is 139 bytes, padded with 5 spaces
// to 144, which is the little-endian length prefix 0x90.
TEST(SafetensorsTest, ByteExactGolden) {
  const float z_values[1] = {0.5f};                        // 00 00 00 3f
  const uint16_t a_values[2] = {0x3F80, 0xC000};           // bf16 1.0, -2.0
  const std::vector<TensorBlob> blobs = {
      {"a", DType::kBFloat16, {2}, AsBytes(a_values, sizeof(a_values))},
      {"z", DType::kFloat32, {1}, AsBytes(z_values, sizeof(z_values))},
  };
  const std::string json =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}";
  ASSERT_EQ(json.size(), 139u);
  const std::string expected_header = json + "     ";
  const std::string expected_file =
      std::string("\x90\0\0\0\0\0\0\0", 8) + expected_header +
      std::string("\x00\x00\x00\x3f\x80\x3f\x00\xc0", 8);

  const absl::StatusOr<std::string> header = SafetensorsHeader(blobs);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(*header, expected_header);
  const absl::StatusOr<std::string> file = SerializeSafetensors(blobs);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(*file, expected_file);

  const std::string path = JoinPath(FreshTestDir("st_golden"), "golden.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, blobs).ok());
  EXPECT_EQ(ReadWholeFile(path), expected_file);
}

TEST(SafetensorsTest, MetadataKeysAreSortedAndEscaped) {
  const int32_t value = 7;
  const std::vector<TensorBlob> blobs = {{"t\"q", DType::kInt32, {}, AsBytes(&value, 4)}};
  const absl::StatusOr<std::string> header =
      SafetensorsHeader(blobs, {{"zeta", "12"}, {"alpha", "line\nbreak"}});
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(*header,
            "{\"__metadata__\":{\"alpha\":\"line\\nbreak\",\"format\":\"pt\",\"zeta\":\"12\"},"
            "\"t\\\"q\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}       ");
  EXPECT_EQ(header->size(), 128u);  // 121 bytes of JSON and 7 spaces
  EXPECT_EQ(header->size() % 8, 0u);
}

TEST(SafetensorsTest, RoundTripsAllDTypesInReferenceOrder) {
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorBlob> blobs;
  const auto add = [&](std::string name, DType dtype, std::vector<int64_t> shape) {
    int64_t elements = 1;
    for (const int64_t d : shape) elements *= d;
    storage.push_back(PatternBytes(elements * DTypeSize(dtype), storage.size() + 11));
    blobs.push_back({std::move(name), dtype, std::move(shape), {}});
  };
  add("wte.weight", DType::kFloat32, {50, 8});
  add("h.0.ln_1.bias", DType::kFloat32, {8});
  add("h.0.attn.bias", DType::kFloat16, {1, 1, 4, 4});
  add("scale", DType::kBFloat16, {});
  add("empty", DType::kBFloat16, {0, 3});
  add("ids", DType::kInt32, {5});
  add("position", DType::kInt64, {2});
  for (size_t i = 0; i < blobs.size(); ++i) blobs[i].bytes = storage[i];

  const std::string path = JoinPath(FreshTestDir("st_round_trip"), "model.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, blobs, {{"source", "trident"}}).ok());
  const std::string bytes = ReadWholeFile(path);
  EXPECT_EQ(bytes, *SerializeSafetensors(blobs, {{"source", "trident"}}));

  for (const bool from_file : {true, false}) {
    SCOPED_TRACE(from_file ? "ReadSafetensors" : "ParseSafetensors");
    const absl::StatusOr<SafetensorsContents> read =
        from_file ? ReadSafetensors(path) : ParseSafetensors(bytes, "memory");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->metadata,
              (SafetensorsMetadata{{"format", "pt"}, {"source", "trident"}}));
    std::vector<std::string> order;
    for (const LoadedTensor& t : read->tensors.tensors()) order.push_back(t.name);
    EXPECT_EQ(order, (std::vector<std::string>{"position", "h.0.ln_1.bias", "wte.weight", "ids",
                                               "empty", "scale", "h.0.attn.bias"}));
    for (const TensorBlob& blob : blobs) {
      const absl::StatusOr<const LoadedTensor*> got =
          read->tensors.GetExpected(blob.name, blob.dtype, blob.shape);
      ASSERT_TRUE(got.ok()) << got.status();
      ASSERT_EQ((*got)->bytes.size(), blob.bytes.size());
      EXPECT_TRUE(std::equal(blob.bytes.begin(), blob.bytes.end(), (*got)->bytes.begin()))
          << blob.name;
    }
  }
}

// A file from a JSON header (padded as given) and `data_size` zero data bytes.
std::string HandMade(const std::string& header, size_t data_size) {
  std::string file;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) file.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return file + header + std::string(data_size, '\0');
}

void ExpectRejected(const std::string& file, const std::vector<std::string>& fragments) {
  const absl::StatusOr<SafetensorsContents> read = ParseSafetensors(file, "hand-made");
  ASSERT_FALSE(read.ok()) << "accepted a bad file";
  EXPECT_TRUE(absl::IsDataLoss(read.status())) << read.status();
  for (const std::string& fragment : fragments) {
    EXPECT_TRUE(absl::StrContains(read.status().message(), fragment))
        << "missing '" << fragment << "' in: " << read.status();
  }
}

TEST(SafetensorsTest, AcceptsMembersInAnyOrderWithoutMetadata) {
  const absl::StatusOr<SafetensorsContents> read = ParseSafetensors(
      HandMade(R"({"b":{"data_offsets":[4,8],"shape":[1],"dtype":"I32"},)"
               R"("a":{"shape":[1],"dtype":"F32","data_offsets":[0,4]}})",
               8));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->metadata.empty());
  EXPECT_EQ(read->tensors.tensors()[0].name, "a");  // data order
}

TEST(SafetensorsTest, RejectsBadFiles) {
  const std::string ok_tensor = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  ExpectRejected("\x05\0\0", {"too few"});
  ExpectRejected(std::string("\xe8\x03\0\0\0\0\0\0{}", 10), {"header length 1000",
                                                              "runs past the end"});
  ExpectRejected(std::string("\0\0\0\0\x01\0\0\0{}", 10), {"exceeds the format's limit"});
  ExpectRejected(HandMade(absl::StrCat("{", ok_tensor,
                                       R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
                          8),
                 {"tensor 'b' bytes [4, 8) overlap tensor 'a' bytes [0, 8)"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                          12),
                 {"data bytes [4, 8) belong to no tensor"});
  ExpectRejected(HandMade(absl::StrCat("{", ok_tensor, "}"), 12),
                 {"tensors cover 8 data bytes, but the file holds 12"});
  ExpectRejected(HandMade(absl::StrCat("{", ok_tensor, "}"), 4),
                 {"tensors cover 8 data bytes, but the file holds 4"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", 8),
                 {"tensor 'a'", "\"F64\" is not supported"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                 {"tensor 'a' has 8 bytes", "shape [3] of F32"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                 {"shape dimension -2"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8),
                 {"bad data_offsets"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
                 {"data_offsets [begin, end]"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[2]}})", 8), {"lacks one of"});
  ExpectRejected(HandMade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
                 {"unknown field \"x\""});
  ExpectRejected(HandMade(absl::StrCat("{", ok_tensor, ",", ok_tensor, "}"), 8),
                 {"\"a\" appears twice"});
  ExpectRejected(HandMade(absl::StrCat(R"({"__metadata__":{"format":1},)", ok_tensor, "}"), 8),
                 {"__metadata__ entry \"format\""});
  ExpectRejected(HandMade("[1, 2]", 0), {"not a JSON object"});
  ExpectRejected(HandMade("{\"a\xff\":1}", 0), {"UTF-8"});
  ExpectRejected(HandMade("{\"a\":", 0), {"header: JSON"});
}

TEST(SafetensorsTest, ReadFileErrorsNameThePath) {
  const std::string dir = FreshTestDir("st_bad_file");
  const std::string path = JoinPath(dir, "bad.safetensors");
  WriteWholeFile(path, std::string("\xe8\x03\0\0\0\0\0\0{}", 10));
  const absl::Status status = ReadSafetensors(path).status();
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "runs past the end")) << status;
  EXPECT_TRUE(absl::IsNotFound(ReadSafetensors(JoinPath(dir, "none")).status()));
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  const float value = 1.0f;
  const std::string path = JoinPath(FreshTestDir("st_bad_input"), "x.safetensors");
  EXPECT_FALSE(WriteSafetensors(path, {{"__metadata__", DType::kFloat32, {}, AsBytes(&value, 4)}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"a", DType::kFloat32, {2}, AsBytes(&value, 4)}}).ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"a", DType::kFloat32, {}, AsBytes(&value, 4)},
                                       {"a", DType::kFloat32, {}, AsBytes(&value, 4)}})
                   .ok());
  EXPECT_FALSE(WriteSafetensors(path, {{"\xff", DType::kFloat32, {}, AsBytes(&value, 4)}}).ok());
  EXPECT_FALSE(PathExists(path));
}

TEST(SafetensorsTest, DTypeNames) {
  for (const DType dtype : {DType::kFloat32, DType::kBFloat16, DType::kFloat16, DType::kInt32,
                            DType::kInt64}) {
    EXPECT_EQ(*ParseSafetensorsDType(SafetensorsDTypeName(dtype)), dtype);
  }
  EXPECT_FALSE(ParseSafetensorsDType("f32").ok());
  EXPECT_FALSE(ParseSafetensorsDType("U8").ok());
}

}  // namespace
}  // namespace trident::checkpoint
