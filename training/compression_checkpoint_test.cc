// The compressors' state through a rank file and back, bit for bit, and the
// refusals of files that do not hold it properly.

#include "training/compression_checkpoint.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/io/file_util.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "training/checkpoint/checkpoint_meta.h"
#include "training/checkpoint/tensor_file.h"

namespace trident::training {
namespace {

using data_parallel::BucketSyncState;
using ::testing::HasSubstr;

// `blobs` as rank 0's file of a one-rank checkpoint in `dir`; its meta.
checkpoint::CheckpointMeta WriteRankFile(const std::string& dir,
                                         const std::vector<checkpoint::TensorBlob>& blobs) {
  const std::string name = checkpoint::RankFileName(0);
  absl::StatusOr<checkpoint::TensorFileSummary> summary =
      checkpoint::WriteTensorFile(io::JoinPath(dir, name), blobs);
  EXPECT_TRUE(summary.ok()) << summary.status();
  checkpoint::CheckpointMeta meta;
  checkpoint::RankFile* file = meta.add_files();
  file->set_name(name);
  file->set_size(summary->file_size);
  file->set_crc32c(summary->file_crc32c);
  return meta;
}

TEST(CompressionCheckpoint, StateRoundTripsBitForBit) {
  std::vector<BucketSyncState> state(3);
  state[0] = {.bucket = 0, .residual = {-0.0f, 1.5f, -3.25e-30f}, .topk_sparsity = 0.1 + 0.2};
  state[1] = {.bucket = 2,
              .residual = {4.0f, -0.0f},
              .powersgd_steps = 7,
              .powersgd_q = {{1, 2, 3, 4}, {5, 6}}};
  state[2] = {.bucket = 5, .residual = {}, .topk_sparsity = 0.0};
  const CompressionStateBlobs blobs(state);
  std::vector<checkpoint::TensorBlob> written;
  blobs.AppendTo(written);
  EXPECT_EQ(written.size(), 2u + 4u + 1u);
  const std::string dir = io::testing::FreshTestDir("compression_round_trip");
  const checkpoint::CheckpointMeta meta = WriteRankFile(dir, written);
  absl::StatusOr<std::vector<BucketSyncState>> read = ReadCompressionState(dir, meta, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  for (size_t i = 0; i < state.size(); ++i) {
    const BucketSyncState& a = state[i];
    const BucketSyncState& b = (*read)[i];
    EXPECT_EQ(b.bucket, a.bucket);
    ASSERT_EQ(b.residual.size(), a.residual.size());
    for (size_t j = 0; j < a.residual.size(); ++j) {
      EXPECT_EQ(std::signbit(b.residual[j]), std::signbit(a.residual[j]));
      EXPECT_EQ(b.residual[j], a.residual[j]);
    }
    EXPECT_EQ(b.topk_sparsity, a.topk_sparsity);  // Exact double: 0.30000000000000004.
    EXPECT_EQ(b.powersgd_steps, a.powersgd_steps);
    EXPECT_EQ(b.powersgd_q, a.powersgd_q);
  }
}

TEST(CompressionCheckpoint, FilesThatDoNotHoldTheStateProperlyAreRefused) {
  const std::string dir = io::testing::FreshTestDir("compression_refused");
  const std::vector<float> q = {1, 2};
  const int64_t steps = 3;
  const auto bytes = [](const auto* data, size_t n) {
    return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(data), n * sizeof(*data));
  };
  // Q number 1 without number 0.
  checkpoint::CheckpointMeta meta =
      WriteRankFile(dir, {{"compression/powersgd_steps@0", DType::kInt64, {}, bytes(&steps, 1)},
                          {"compression/powersgd_q@0.1", DType::kFloat32, {2}, bytes(q.data(), 2)}});
  absl::Status status = ReadCompressionState(dir, meta, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("'compression/powersgd_q@0.0': missing"));

  // A residual of the wrong dtype.
  meta = WriteRankFile(dir, {{"compression/residual@1", DType::kInt64, {1}, bytes(&steps, 1)}});
  status = ReadCompressionState(dir, meta, 0).status();
  EXPECT_THAT(status.message(), HasSubstr("'compression/residual@1': expected a 1-D fp32 tensor"));

  // A file that is not the one the meta records.
  meta.mutable_files(0)->set_crc32c(meta.files(0).crc32c() ^ 1);
  status = ReadCompressionState(dir, meta, 0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("does not belong to this checkpoint"));
}

// A compressed checkpoint of an earlier build (buckets that mixed tp-split
// and tp-replicated parameters) restores its state only at tp 1, where the
// buckets are unchanged.
TEST(CompressionCheckpoint, StateOfEarlierBucketsIsDroppedAtTensorParallelAboveOne) {
  for (const int tp : {1, 2}) {
    checkpoint::CheckpointMeta current;
    current.set_world_size(2 * tp);
    current.set_seq_length(16);
    current.mutable_layout()->set_tensor_parallel(tp);
    current.mutable_layout()->set_data_parallel(2);
    current.mutable_layout()->set_gradient_compression(topology::GradientCompression::INT8);
    checkpoint::CheckpointMeta saved = current;
    saved.set_holds_compression_state(true);
    const CompressionResumePlan earlier = PlanCompressionResume("ckpt", saved, current);
    EXPECT_EQ(earlier.restore, tp == 1) << "tp " << tp << ": " << earlier.note;
    if (tp > 1) {
      EXPECT_THAT(earlier.note,
                  HasSubstr("belongs to the buckets of an earlier build, which mixed tp-split and "
                            "tp-replicated parameters at tensor_parallel=2: dropped"));
    }
    saved.set_tp_replicated_buckets_apart(true);
    const CompressionResumePlan now = PlanCompressionResume("ckpt", saved, current);
    EXPECT_TRUE(now.restore) << "tp " << tp << ": " << now.note;
    EXPECT_THAT(now.note, HasSubstr("restored the gradient compression state"));
  }
}

}  // namespace
}  // namespace trident::training
