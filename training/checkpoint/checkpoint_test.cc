#include "training/checkpoint/checkpoint.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/io/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "training/checkpoint/checkpoint_meta.h"
#include "training/checkpoint/tensor_blob.h"
#include "training/checkpoint/tensor_file.h"
#include "training/checkpoint/test_util.h"

namespace trident::checkpoint {

using ::trident::io::JoinPath;
using ::trident::io::ListDirectory;
using ::trident::io::MakeDirectory;
using ::trident::io::PathExists;
using ::trident::io::RemoveTree;
using ::trident::io::RenamePath;

namespace {

using testing::FlipByte;
using testing::FreshTestDir;
using testing::PatternBytes;
using testing::ReadWholeFile;
using testing::TruncateFile;
using testing::WriteWholeFile;


// One rank's parameters and Adam state, distinct per rank and per version.
struct RankState {
  std::vector<std::vector<std::byte>> storage;
  std::vector<TensorBlob> blobs;

  RankState(int rank, int version) {
    const std::vector<std::pair<std::string, std::vector<int64_t>>> params = {
        {absl::StrCat("h.", rank, ".attn.c_attn.weight"), {8, 24}},
        {absl::StrCat("h.", rank, ".ln_1.bias"), {8}}};
    storage.reserve(params.size() * 3);
    for (const auto& [name, shape] : params) {
      int64_t elements = 1;
      for (const int64_t d : shape) elements *= d;
      for (const char* prefix : {"param/", "adam_m/", "adam_v/"}) {
        storage.push_back(PatternBytes(elements * 4, 1000 * version + 10 * rank + storage.size()));
        blobs.push_back(TensorBlob{absl::StrCat(prefix, name), DType::kFloat32, shape,
                                   storage.back()});
      }
    }
  }
};

// A job's configuration: a 3-stage pipeline of a small model.
training::TrainConfig MakeConfig() {
  training::TrainConfig config;
  config.set_seed(42);
  config.mutable_model()->set_num_layers(6);
  config.mutable_model()->set_hidden_size(64);
  config.mutable_layout()->set_pipeline_parallel(3);
  config.mutable_layout()->set_schedule(topology::ONE_F_ONE_B);
  config.mutable_layout()->add_layers_per_stage(2);
  config.mutable_layout()->add_layers_per_stage(2);
  config.mutable_layout()->add_layers_per_stage(2);
  config.mutable_data()->set_seq_length(32);
  return config;
}

CheckpointMeta MakeMeta(int world_size, int64_t step) {
  DataPosition position;
  position.set_seed(std::numeric_limits<uint64_t>::max() - 5);  // beyond int64: must stay exact
  position.set_step(step);
  CheckpointMeta meta = MakeCheckpointMeta(MakeConfig(), world_size, step, position);
  meta.set_seed(std::numeric_limits<uint64_t>::max() - 7);
  return meta;
}

// Writes a `world_size`-rank checkpoint the way a trainer would, one thread per rank.
absl::Status WriteMultiRank(const std::string& dir, int world_size, int64_t step, int version) {
  absl::StatusOr<std::string> partial = BeginCheckpoint(dir);
  if (!partial.ok()) return partial.status();
  std::vector<absl::Status> results(world_size);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < world_size; ++rank) {
    ranks.emplace_back([&, rank] {
      const RankState state(rank, version);
      results[rank] = WriteRankShard(*partial, rank, state.blobs);
    });
  }
  for (std::thread& t : ranks) t.join();
  for (const absl::Status& status : results) {
    if (!status.ok()) return status;
  }
  return FinalizeCheckpoint(dir, MakeMeta(world_size, step));
}

void ExpectRankMatches(const std::string& dir, int rank, int version) {
  const absl::StatusOr<TensorSet> read = ReadRankShard(dir, rank);
  ASSERT_TRUE(read.ok()) << read.status();
  const RankState expected(rank, version);
  ASSERT_EQ(read->size(), expected.blobs.size());
  for (const TensorBlob& blob : expected.blobs) {
    const absl::StatusOr<const LoadedTensor*> got =
        read->GetExpected(blob.name, blob.dtype, blob.shape);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ((*got)->bytes.size(), blob.bytes.size());
    EXPECT_TRUE(std::equal(blob.bytes.begin(), blob.bytes.end(), (*got)->bytes.begin()))
        << blob.name;
  }
}

void ExpectStatus(const absl::Status& status, absl::StatusCode code,
                  const std::vector<std::string>& fragments) {
  ASSERT_FALSE(status.ok()) << "expected an error";
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& fragment : fragments) {
    EXPECT_TRUE(absl::StrContains(status.message(), fragment))
        << "missing '" << fragment << "' in: " << status;
  }
}

TEST(CheckpointTest, ThreeRanksWriteAndReadBack) {
  const std::string root = FreshTestDir("ckpt_three_ranks");
  const std::string dir = JoinPath(root, "step_120");
  ASSERT_TRUE(WriteMultiRank(dir, 3, 120, 1).ok());

  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"step_120"});  // no .partial/.old
  EXPECT_EQ(*ListDirectory(dir),
            (std::vector<std::string>{"meta.textproto", "rank_00000.tensors",
                                      "rank_00001.tensors", "rank_00002.tensors"}));
  const absl::StatusOr<CheckpointMeta> meta = ReadCheckpointMeta(dir);
  ASSERT_TRUE(meta.ok()) << meta.status();
  const CheckpointMeta expected = MakeMeta(3, 120);
  EXPECT_EQ(meta->format_version(), kCheckpointFormatVersion);
  EXPECT_EQ(meta->step(), 120);
  EXPECT_EQ(meta->seed(), expected.seed());
  EXPECT_EQ(meta->data_position().seed(), expected.data_position().seed());
  EXPECT_EQ(meta->data_position().step(), 120);
  EXPECT_EQ(meta->model().num_layers(), 6);
  EXPECT_EQ(meta->layout().pipeline_parallel(), 3);
  EXPECT_EQ(meta->seq_length(), 32);
  EXPECT_EQ(meta->world_size(), 3);
  ASSERT_EQ(meta->files_size(), 3);
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(meta->files(rank).name(), RankFileName(rank));
    const std::string path = JoinPath(dir, RankFileName(rank));
    EXPECT_EQ(meta->files(rank).size(), ReadWholeFile(path).size());
    EXPECT_EQ(meta->files(rank).crc32c(), ReadTensorFileSummary(path)->file_crc32c);
    ExpectRankMatches(dir, rank, 1);
  }
  EXPECT_TRUE(CheckResumeCompatible(dir, *meta, expected).ok());
  ExpectStatus(ReadRankShard(dir, 3).status(), absl::StatusCode::kInvalidArgument,
               {"rank 3 is outside", "written by 3 ranks"});
}

TEST(CheckpointTest, ShapeMismatchNamesCheckpointAndTensor) {
  const std::string dir = JoinPath(FreshTestDir("ckpt_shape"), "ckpt");
  ASSERT_TRUE(WriteMultiRank(dir, 1, 5, 1).ok());
  const absl::StatusOr<TensorSet> read = ReadRankShard(dir, 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->GetExpected("param/h.0.attn.c_attn.weight", DType::kFloat32, {8, 12})
                .status()
                .message(),
            absl::StrCat("checkpoint '", dir,
                         "' rank 0 has tensor 'param/h.0.attn.c_attn.weight' with shape [8, 24], "
                         "expected [8, 12]"));
}

TEST(CheckpointTest, ReplacesExistingCheckpoint) {
  const std::string root = FreshTestDir("ckpt_replace");
  const std::string dir = JoinPath(root, "latest/");  // trailing slash is fine
  ASSERT_TRUE(WriteMultiRank(dir, 2, 10, 1).ok());
  ASSERT_TRUE(WriteMultiRank(dir, 2, 20, 2).ok());
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"latest"});
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 20);
  ExpectRankMatches(dir, 0, 2);
  ExpectRankMatches(dir, 1, 2);
}

TEST(CheckpointTest, SingleProcessSaveAndLoad) {
  const std::string root = FreshTestDir("ckpt_single");
  const std::string dir = JoinPath(root, "ckpt");
  const RankState state(0, 7);
  ASSERT_TRUE(SaveCheckpoint(dir, MakeMeta(1, 3), state.blobs).ok());
  const RankState newer(0, 8);
  ASSERT_TRUE(SaveCheckpoint(dir, MakeMeta(1, 4), newer.blobs).ok());
  const absl::StatusOr<LoadedCheckpoint> loaded = LoadCheckpoint(dir, MakeMeta(1, 0));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->meta.step(), 4);
  EXPECT_EQ(loaded->tensors.size(), newer.blobs.size());
  ExpectRankMatches(dir, 0, 8);
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"ckpt"});

  ExpectStatus(SaveCheckpoint(dir, MakeMeta(2, 5), newer.blobs), absl::StatusCode::kInvalidArgument,
               {"meta.world_size is 2"});
  std::vector<TensorBlob> bad = newer.blobs;
  bad[0].shape = {1};
  ExpectStatus(SaveCheckpoint(dir, MakeMeta(1, 5), bad), absl::StatusCode::kInvalidArgument,
               {"param/h.0.attn.c_attn.weight"});
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 4);  // untouched
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"ckpt"});
}

TEST(CheckpointTest, MetaMismatchNamesTheFieldAndBothValues) {
  const std::string dir = JoinPath(FreshTestDir("ckpt_mismatch"), "c");
  ASSERT_TRUE(WriteMultiRank(dir, 3, 1, 1).ok());
  const CheckpointMeta saved = *ReadCheckpointMeta(dir);
  // A job differs from the checkpoint in one field at a time.
  const auto refused = [&](const std::function<void(training::TrainConfig*)>& change,
                           int world_size, const std::string& expected) {
    training::TrainConfig config = MakeConfig();
    change(&config);
    const CheckpointMeta current = MakeCheckpointMeta(config, world_size, 0, DataPosition());
    ExpectStatus(CheckResumeCompatible(dir, saved, current), absl::StatusCode::kFailedPrecondition,
                 {dir, expected});
  };
  using training::TrainConfig;
  refused([](TrainConfig* c) { c->mutable_layout()->set_pipeline_parallel(1); }, 3,
          "layout.pipeline_parallel: checkpoint 3, this job 1");
  refused([](TrainConfig* c) { c->mutable_layout()->set_tensor_parallel(2); }, 3,
          "layout.tensor_parallel: checkpoint 1, this job 2");
  refused([](TrainConfig* c) { c->mutable_layout()->set_schedule(topology::GPIPE); }, 3,
          "layout.schedule: checkpoint ONE_F_ONE_B, this job GPIPE");
  refused([](TrainConfig* c) { c->mutable_layout()->set_rank_order("pp-dp-tp"); }, 3,
          "layout.rank_order: checkpoint \"tp-dp-pp\", this job \"pp-dp-tp\"");
  refused([](TrainConfig* c) { c->mutable_layout()->set_layers_per_stage(0, 3); }, 3,
          "layout.layers_per_stage: checkpoint [2, 2, 2], this job [3, 2, 2]");
  refused([](TrainConfig* c) { c->mutable_model()->set_hidden_size(128); }, 3,
          "model.hidden_size: checkpoint 64, this job 128");
  refused([](TrainConfig* c) { c->mutable_model()->set_tied_embeddings(false); }, 3,
          "model.tied_embeddings: checkpoint true, this job false");
  refused([](TrainConfig* c) { c->mutable_model()->set_init_std(0.5f); }, 3,
          "model.init_std: checkpoint 0.02, this job 0.5");
  refused([](TrainConfig* c) { c->mutable_data()->set_seq_length(64); }, 3,
          "seq_length: checkpoint 32, this job 64");
  refused([](TrainConfig*) {}, 2, "world_size: checkpoint 3, this job 2");
  ExpectStatus(LoadCheckpoint(dir, MakeMeta(1, 0)).status(), absl::StatusCode::kFailedPrecondition,
               {"world_size: checkpoint 3, this job 1"});

  // Neither the step, the seed, the data position nor the file list is part of
  // compatibility (the trainer checks the seed itself).
  CheckpointMeta later = MakeMeta(3, 500);
  later.set_seed(1);
  EXPECT_TRUE(CheckResumeCompatible(dir, saved, later).ok());
}

TEST(CheckpointTest, ExplicitDefaultEqualsUnset) {
  CheckpointMeta unset = MakeMeta(1, 0);
  unset.clear_model();
  unset.mutable_layout()->clear_tensor_parallel();
  unset.mutable_layout()->clear_sequence_parallel();
  CheckpointMeta explicit_defaults = unset;
  // Every field of the model stated with its default value.
  transformer::GptConfig* model = explicit_defaults.mutable_model();
  model->set_vocab_size(model->vocab_size());
  model->set_context_length(model->context_length());
  model->set_num_layers(model->num_layers());
  model->set_num_heads(model->num_heads());
  model->set_hidden_size(model->hidden_size());
  model->set_ffn_hidden_size(model->ffn_hidden_size());
  model->set_tied_embeddings(model->tied_embeddings());
  model->set_init_std(model->init_std());
  model->set_layer_norm_epsilon(model->layer_norm_epsilon());
  explicit_defaults.mutable_layout()->set_tensor_parallel(1);
  explicit_defaults.mutable_layout()->set_sequence_parallel(false);
  ASSERT_NE(FormatCheckpointMeta(unset), FormatCheckpointMeta(explicit_defaults));
  EXPECT_TRUE(CheckResumeCompatible("d", unset, explicit_defaults).ok());
  EXPECT_TRUE(CheckResumeCompatible("d", explicit_defaults, unset).ok());
  // And a non-default value against an unset field is a difference.
  explicit_defaults.mutable_model()->set_num_heads(8);
  ExpectStatus(CheckResumeCompatible("d", unset, explicit_defaults),
               absl::StatusCode::kFailedPrecondition, {"model.num_heads: checkpoint 4, this job 8"});
}

// ffn_hidden_size 0 means 4 x hidden_size: stating the width is the same model
// (a Hugging Face config.json states it), another width is not.
TEST(CheckpointTest, TheMlpWidthComparesByValue) {
  CheckpointMeta implicit = MakeMeta(1, 0);
  implicit.mutable_model()->set_hidden_size(64);
  implicit.mutable_model()->set_ffn_hidden_size(0);
  CheckpointMeta stated = implicit;
  stated.mutable_model()->set_ffn_hidden_size(256);
  EXPECT_TRUE(CheckResumeCompatible("d", implicit, stated).ok());
  stated.mutable_model()->set_ffn_hidden_size(128);
  ExpectStatus(CheckResumeCompatible("d", implicit, stated),
               absl::StatusCode::kFailedPrecondition,
               {"model.ffn_hidden_size: checkpoint 256, this job 128"});
}

TEST(CheckpointTest, StoredStepMustMatchTheMeta) {
  const std::string dir = JoinPath(FreshTestDir("ckpt_step"), "c");
  RankState state(0, 1);
  int64_t step = 9;
  state.blobs.push_back(TensorBlob{"optimizer/step", DType::kInt64, {},
                                   absl::MakeConstSpan(reinterpret_cast<const std::byte*>(&step),
                                                       sizeof(step))});
  ASSERT_TRUE(SaveCheckpoint(dir, MakeMeta(1, 9), state.blobs).ok());
  const CheckpointMeta meta = *ReadCheckpointMeta(dir);
  const absl::StatusOr<TensorSet> tensors = ReadRankShard(dir, 0);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_TRUE(CheckStoredStep(dir, meta, *tensors, "optimizer/step").ok());
  EXPECT_TRUE(CheckStoredStep(dir, meta, *tensors, "no/such/tensor").ok());
  CheckpointMeta other = meta;
  other.set_step(10);
  ExpectStatus(CheckStoredStep(dir, other, *tensors, "optimizer/step"),
               absl::StatusCode::kDataLoss,
               {"stores optimizer/step = 9", "the checkpoint meta says step 10"});
}

TEST(CheckpointTest, DamagedRankFilesAreRefused) {
  const std::string root = FreshTestDir("ckpt_damaged");
  const std::string dir = JoinPath(root, "c");
  ASSERT_TRUE(WriteMultiRank(dir, 3, 1, 1).ok());
  const std::string rank1 = JoinPath(dir, RankFileName(1));
  const std::string original = ReadWholeFile(rank1);

  ASSERT_TRUE(RemoveTree(rank1).ok());
  ExpectStatus(ReadRankShard(dir, 1).status(), absl::StatusCode::kNotFound,
               {"is missing rank 1's file", rank1});

  WriteWholeFile(rank1, original);
  TruncateFile(rank1, original.size() - 100);
  ExpectStatus(ReadRankShard(dir, 1).status(), absl::StatusCode::kDataLoss,
               {rank1, "truncated", absl::StrCat("expected ", original.size(), " bytes")});

  WriteWholeFile(rank1, original);
  FlipByte(rank1, original.size() - 30);  // inside the last tensor's payload (before the 20-byte trailer)
  ExpectStatus(ReadRankShard(dir, 1).status(), absl::StatusCode::kDataLoss,
               {rank1, "tensor 'adam_v/h.1.ln_1.bias' is corrupted"});

  // A valid file from another checkpoint is not this checkpoint's file.
  const std::string other = JoinPath(root, "other");
  ASSERT_TRUE(WriteMultiRank(other, 3, 2, 2).ok());
  WriteWholeFile(rank1, ReadWholeFile(JoinPath(other, RankFileName(1))));
  ExpectStatus(ReadRankShard(dir, 1).status(), absl::StatusCode::kDataLoss,
               {rank1, "does not belong to this checkpoint"});

  WriteWholeFile(rank1, original);
  ExpectRankMatches(dir, 1, 1);
}

// `original` with its first occurrence of `from` replaced by `to`.
std::string Edited(std::string original, const std::string& from, const std::string& to) {
  const size_t at = original.find(from);
  EXPECT_NE(at, std::string::npos) << from << " in " << original;
  if (at != std::string::npos) original.replace(at, from.size(), to);
  return original;
}

TEST(CheckpointTest, DamagedMetaIsRefused) {
  const std::string dir = JoinPath(FreshTestDir("ckpt_meta"), "c");
  ASSERT_TRUE(WriteMultiRank(dir, 2, 1, 1).ok());
  const std::string meta_path = JoinPath(dir, "meta.textproto");
  const std::string original = ReadWholeFile(meta_path);
  const auto refused_with = [&](const std::string& text, absl::StatusCode code,
                                const std::vector<std::string>& fragments) {
    WriteWholeFile(meta_path, text);
    ExpectStatus(ReadCheckpointMeta(dir).status(), code, fragments);
  };

  // Cut in the middle of a nested message: the parser's position is named.
  const size_t cut = original.find("layout {") + 3;
  refused_with(original.substr(0, cut), absl::StatusCode::kDataLoss,
               {"checkpoint meta ", meta_path, ":"});
  refused_with(Edited(original, "step: 1", "stop: 1"), absl::StatusCode::kDataLoss,
               {meta_path, ":2:1: ", "has no field named \"stop\""});
  refused_with(Edited(original, "step: 1", "step: \"one\""), absl::StatusCode::kDataLoss,
               {meta_path, ":2:7: ", "Expected integer"});
  refused_with(Edited(original, "format_version: 3", "format_version: 1"),
               absl::StatusCode::kFailedPrecondition,
               {meta_path, "format_version 1 is not supported; this program reads versions 2 to 3"});
  refused_with(Edited(original, "format_version: 3", "format_version: 4"),
               absl::StatusCode::kFailedPrecondition,
               {meta_path, "format_version 4 is newer than this program, which reads versions 2 to 3"});
  refused_with(Edited(original, "format_version: 3\n", ""), absl::StatusCode::kDataLoss,
               {meta_path, "format_version is missing"});
  refused_with(Edited(original, "world_size: 2", "world_size: 3"), absl::StatusCode::kDataLoss,
               {meta_path, "lists 2 rank files for world_size 3"});
  refused_with(Edited(original, "world_size: 2", "world_size: 0"), absl::StatusCode::kDataLoss,
               {meta_path, "world_size is 0; it must be >= 1"});
  refused_with(Edited(original, "rank_00001.tensors", "rank_00007.tensors"),
               absl::StatusCode::kDataLoss,
               {meta_path, "files[1].name is \"rank_00007.tensors\", expected \"rank_00001.tensors\""});

  // A meta that parses but records another size or checksum than the rank file has.
  const CheckpointMeta good = *ParseCheckpointMeta(original, "test");
  CheckpointMeta bad_size = good;
  bad_size.mutable_files(1)->set_size(good.files(1).size() + 1);
  WriteWholeFile(meta_path, FormatCheckpointMeta(bad_size));
  ExpectStatus(ReadRankShard(dir, 1).status(), absl::StatusCode::kDataLoss,
               {"rank_00001.tensors", "does not belong to this checkpoint"});
  CheckpointMeta bad_crc = good;
  bad_crc.mutable_files(0)->set_crc32c(good.files(0).crc32c() ^ 1);
  WriteWholeFile(meta_path, FormatCheckpointMeta(bad_crc));
  ExpectStatus(ReadRankShard(dir, 0).status(), absl::StatusCode::kDataLoss,
               {"rank_00000.tensors", "does not belong to this checkpoint"});

  WriteWholeFile(meta_path, original);
  EXPECT_TRUE(ReadRankShard(dir, 1).ok());
  ASSERT_TRUE(RemoveTree(meta_path).ok());
  ExpectStatus(ReadCheckpointMeta(dir).status(), absl::StatusCode::kNotFound,
               {"has no meta.textproto"});
  ExpectStatus(ReadCheckpointMeta(JoinPath(dir, "nowhere")).status(), absl::StatusCode::kNotFound,
               {"does not exist"});
}

TEST(CheckpointTest, MetaTextRoundTrips) {
  CheckpointMeta meta = MakeMeta(2, 77);
  meta.set_format_version(kCheckpointFormatVersion);
  RankFile* file = meta.add_files();
  file->set_name(RankFileName(0));
  file->set_size(123);
  file->set_crc32c(0xFFFFFFFFu);
  file = meta.add_files();
  file->set_name(RankFileName(1));
  file->set_size(0);
  file->set_crc32c(0);
  const std::string text = FormatCheckpointMeta(meta);
  EXPECT_TRUE(absl::StrContains(text, "step: 77\n")) << text;
  const absl::StatusOr<CheckpointMeta> back = ParseCheckpointMeta(text, "test");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->seed(), meta.seed());
  EXPECT_EQ(back->data_position().seed(), meta.data_position().seed());
  EXPECT_EQ(back->layout().layers_per_stage_size(), 3);
  ASSERT_EQ(back->files_size(), 2);
  EXPECT_EQ(back->files(0).size(), 123u);
  EXPECT_EQ(back->files(0).crc32c(), 0xFFFFFFFFu);
  EXPECT_EQ(FormatCheckpointMeta(*back), text);

  meta.mutable_files()->RemoveLast();
  ExpectStatus(ParseCheckpointMeta(FormatCheckpointMeta(meta), "test").status(),
               absl::StatusCode::kDataLoss, {"lists 1 rank files for world_size 2"});
}

TEST(CheckpointTest, FinalizeRefusesIncompleteOrForeignPartialDirectory) {
  const std::string root = FreshTestDir("ckpt_finalize");
  const std::string dir = JoinPath(root, "c");
  ASSERT_TRUE(WriteMultiRank(dir, 3, 1, 1).ok());

  // Only two of three ranks wrote: the old checkpoint stays.
  absl::StatusOr<std::string> partial = BeginCheckpoint(dir);
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_EQ(*partial, PartialCheckpointDir(dir));
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_TRUE(WriteRankShard(*partial, rank, RankState(rank, 2).blobs).ok());
  }
  ExpectStatus(FinalizeCheckpoint(dir, MakeMeta(3, 2)), absl::StatusCode::kFailedPrecondition,
               {"rank 2 of 3 has not written"});
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 1);
  ExpectRankMatches(dir, 2, 1);

  // A file from a larger earlier job is refused rather than swept in.
  ASSERT_TRUE(WriteRankShard(*partial, 2, RankState(2, 2).blobs).ok());
  ASSERT_TRUE(WriteRankShard(*partial, 5, RankState(5, 2).blobs).ok());
  ExpectStatus(FinalizeCheckpoint(dir, MakeMeta(3, 2)), absl::StatusCode::kFailedPrecondition,
               {"unexpected entry 'rank_00005.tensors'"});
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 1);

  // BeginCheckpoint clears the stale partial directory.
  partial = BeginCheckpoint(dir);
  ASSERT_TRUE(partial.ok());
  EXPECT_TRUE(ListDirectory(*partial)->empty());

  ExpectStatus(FinalizeCheckpoint(dir, MakeMeta(0, 2)), absl::StatusCode::kInvalidArgument,
               {"world_size is 0"});
  ExpectStatus(WriteRankShard(*partial, -1, {}), absl::StatusCode::kInvalidArgument,
               {"rank is -1"});
}

TEST(CheckpointTest, RefusesToReplaceSomethingElse) {
  const std::string root = FreshTestDir("ckpt_foreign");
  const std::string dir = JoinPath(root, "results");
  ASSERT_TRUE(MakeDirectory(dir).ok());
  WriteWholeFile(JoinPath(dir, "important.txt"), "keep me");
  const RankState state(0, 1);
  ExpectStatus(SaveCheckpoint(dir, MakeMeta(1, 1), state.blobs),
               absl::StatusCode::kFailedPrecondition, {"is not a checkpoint", "refusing"});
  EXPECT_EQ(ReadWholeFile(JoinPath(dir, "important.txt")), "keep me");

  // Directories with the reserved suffixes are only deleted when they hold
  // checkpoint files.
  const std::string other = JoinPath(root, "other");
  ASSERT_TRUE(MakeDirectory(PartialCheckpointDir(other)).ok());
  WriteWholeFile(JoinPath(PartialCheckpointDir(other), "notes.txt"), "mine");
  ExpectStatus(SaveCheckpoint(other, MakeMeta(1, 1), state.blobs),
               absl::StatusCode::kFailedPrecondition, {"refusing to delete", "notes.txt"});
  EXPECT_EQ(ReadWholeFile(JoinPath(PartialCheckpointDir(other), "notes.txt")), "mine");

  // An empty directory (made ahead for --save) is fine to fill.
  const std::string empty = JoinPath(root, "empty");
  ASSERT_TRUE(MakeDirectory(empty).ok());
  ASSERT_TRUE(SaveCheckpoint(empty, MakeMeta(1, 1), state.blobs).ok());
  EXPECT_EQ(ReadCheckpointMeta(empty)->step(), 1);
}

TEST(CheckpointTest, RecoversFromCrashBetweenRenames) {
  const std::string root = FreshTestDir("ckpt_crash");
  const std::string dir = JoinPath(root, "c");
  const std::string staged = JoinPath(root, "staged");
  ASSERT_TRUE(WriteMultiRank(dir, 2, 1, 1).ok());
  ASSERT_TRUE(WriteMultiRank(staged, 2, 2, 2).ok());

  // State after the first rename of a replacement: <dir>.old (step 1) and a
  // complete <dir>.partial (step 2), no <dir>.
  ASSERT_TRUE(RenamePath(dir, OldCheckpointDir(dir)).ok());
  ASSERT_TRUE(RenamePath(staged, PartialCheckpointDir(dir)).ok());
  ExpectStatus(ReadCheckpointMeta(dir).status(), absl::StatusCode::kFailedPrecondition,
               {"was interrupted", "RecoverCheckpoint"});
  ASSERT_TRUE(RecoverCheckpoint(dir).ok());
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 2);
  ExpectRankMatches(dir, 1, 2);
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"c"});

  // Same, but the new one never got its meta file: the old one comes back.
  ASSERT_TRUE(WriteMultiRank(staged, 2, 3, 3).ok());
  ASSERT_TRUE(RemoveTree(JoinPath(staged, "meta.textproto")).ok());
  ASSERT_TRUE(RenamePath(dir, OldCheckpointDir(dir)).ok());
  ASSERT_TRUE(RenamePath(staged, PartialCheckpointDir(dir)).ok());
  ASSERT_TRUE(RecoverCheckpoint(dir).ok());
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 2);
  // The unfinished partial directory is cleared by the next BeginCheckpoint.
  ASSERT_TRUE(WriteMultiRank(dir, 2, 4, 4).ok());
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"c"});
  EXPECT_EQ(ReadCheckpointMeta(dir)->step(), 4);

  // After the second rename only a stale <dir>.old is left: removed.
  ASSERT_TRUE(MakeDirectory(OldCheckpointDir(dir)).ok());
  ASSERT_TRUE(RecoverCheckpoint(dir).ok());
  EXPECT_EQ(*ListDirectory(root), std::vector<std::string>{"c"});
  ExpectRankMatches(dir, 0, 4);
}

TEST(CheckpointTest, FirstCheckpointInterruptedLeavesNothingReadable) {
  const std::string root = FreshTestDir("ckpt_first_crash");
  const std::string dir = JoinPath(root, "c");
  absl::StatusOr<std::string> partial = BeginCheckpoint(dir);
  ASSERT_TRUE(partial.ok());
  ASSERT_TRUE(WriteRankShard(*partial, 0, RankState(0, 1).blobs).ok());
  // Crash before FinalizeCheckpoint: no checkpoint, and a clear message.
  ExpectStatus(ReadCheckpointMeta(dir).status(), absl::StatusCode::kNotFound,
               {"does not exist", "unfinished write"});
  ASSERT_TRUE(RecoverCheckpoint(dir).ok());
  EXPECT_FALSE(PathExists(dir));
}

}  // namespace
}  // namespace trident::checkpoint
