// Resuming runs whose data-parallel replicas carry state of their own
// (issue 12): the gradient compressors' error feedback, adaptive K and
// PowerSGD's Q (training/compression_checkpoint.h), and local SGD's and
// gossip's diverged replicas (training/reshard.h, ResumeFromOwnRankFiles).
// Each exact case runs 8 steps whole, and 3 steps, a checkpoint, and the
// other 5 resumed: the resumed losses must equal the whole run's bit for bit
// (EXPECT_EQ on doubles; NaN never compares equal). Where the state cannot
// follow (another layout, compression turned off or on, an older checkpoint)
// the resume must say so in its log and run on.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/io/file_util.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "topology/layout.pb.h"
#include "training/checkpoint/checkpoint_series.h"
#include "training/trainer.h"
#include "training/trainer_testing.h"

namespace trident::training {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::trident::training::testing::MustTrain;
using ::trident::training::testing::TinyOptions;
using ::trident::training::testing::WriteCorpus;
using topology::GradientCompression;

constexpr int kSaveAt = 3;  // Steps before the checkpoint; 5 follow.

struct Layout {
  std::string name;
  int tp = 1, pp = 1, dp = 2;
  GradientCompression::Method compression = GradientCompression::NONE;
  bool topk_adaptive = false;
  topology::DpSync::Mode dp_sync = topology::DpSync::SYNC;
};

TrainOptions WithLayout(TrainOptions options, const Layout& l) {
  topology::ParallelLayout* layout = options.config.mutable_layout();
  layout->set_tensor_parallel(l.tp);
  layout->set_pipeline_parallel(l.pp);
  layout->set_data_parallel(l.dp);
  layout->set_grad_bucket_mb(0.01f);  // Several buckets.
  // Each mode's parameters only with it (the layout refuses others).
  layout->set_gradient_compression(l.compression);
  if (l.compression == GradientCompression::TOPK) {
    layout->set_topk_ratio(0.05f);
    layout->set_topk_adaptive(l.topk_adaptive);
  }
  if (l.compression == GradientCompression::POWERSGD) {
    layout->set_powersgd_rank(2);
    layout->set_powersgd_start_step(2);  // Steps 1-2 uncompressed: the save at 3 follows.
  }
  layout->set_dp_sync(l.dp_sync);
  // Averages after steps 4 and 8: the save at 3 is mid-phase.
  if (l.dp_sync == topology::DpSync::LOCAL_SGD) layout->set_local_sgd_steps(4);
  return options;
}

struct Resumed {
  std::vector<double> whole;  // 8 steps uninterrupted.
  std::vector<double> tail;   // Steps 4-8 of the resumed run.
  std::string log;            // What the resumed run printed.
};

class DataParallelResumeTest : public ::testing::Test {
 protected:
  void SetUp() override { data_dir_ = WriteCorpus(io::testing::FreshTestDir("dp_resume_data")); }

  // The checkpoint after kSaveAt steps of `saved`.
  std::string Save(const Layout& saved) {
    const std::string ckpt = io::testing::FreshTestDir(absl::StrCat("dp_resume_", saved.name)) +
                             "/ckpt";
    TrainOptions first = WithLayout(TinyOptions(data_dir_), saved);
    first.save_dir = ckpt;
    first.stop_at_step = kSaveAt;
    EXPECT_EQ(MustTrain(first).losses.size(), static_cast<size_t>(kSaveAt));
    return ckpt;
  }

  // Resumes `ckpt` under `resumed`; its log.
  absl::StatusOr<TrainResult> Resume(const std::string& ckpt, const Layout& resumed,
                                     std::string* log) {
    std::ostringstream lines;
    TrainOptions second = WithLayout(TinyOptions(data_dir_), resumed);
    second.resume_dir = ckpt;
    second.log = &lines;
    absl::StatusOr<TrainResult> result = Train(second);
    *log = lines.str();
    return result;
  }

  // //tools:convert_checkpoint's job: `ckpt` written under `target` as `out`.
  absl::Status Convert(const std::string& ckpt, const Layout& target, const std::string& out,
                       std::string* log) {
    std::ostringstream lines;
    TrainOptions options = WithLayout(TinyOptions(data_dir_), target);
    options.resume_dir = ckpt;
    options.convert_to = out;
    options.log = &lines;
    const absl::Status status = Train(options).status();
    *log = lines.str();
    return status;
  }

  // The whole run and the run saved and resumed under the same layout.
  Resumed SaveAndResume(const Layout& l) {
    Resumed r;
    r.whole = MustTrain(WithLayout(TinyOptions(data_dir_), l)).losses;
    absl::StatusOr<TrainResult> tail = Resume(Save(l), l, &r.log);
    EXPECT_TRUE(tail.ok()) << tail.status();
    if (tail.ok()) r.tail = tail->losses;
    return r;
  }

  std::string data_dir_;
};

void ExpectBitwiseTail(const Resumed& r) {
  ASSERT_EQ(r.whole.size(), 8u);
  ASSERT_EQ(r.tail.size(), 8u - kSaveAt);
  for (size_t s = 0; s < r.tail.size(); ++s) {
    EXPECT_EQ(r.tail[s], r.whole[kSaveAt + s]) << "step " << kSaveAt + s + 1;
  }
}

TEST_F(DataParallelResumeTest, CompressedRunsResumeBitwise) {
  for (const Layout& l : {
           Layout{.name = "int8", .compression = GradientCompression::INT8},
           Layout{.name = "topk", .compression = GradientCompression::TOPK},
           Layout{.name = "topk_adaptive", .compression = GradientCompression::TOPK,
                  .topk_adaptive = true},
           Layout{.name = "powersgd", .compression = GradientCompression::POWERSGD},
           // Every tp and pp rank keeps its own buckets' state.
           Layout{.name = "int8_tp2", .tp = 2, .compression = GradientCompression::INT8},
           Layout{.name = "powersgd_pp2", .pp = 2, .compression = GradientCompression::POWERSGD},
       }) {
    SCOPED_TRACE(l.name);
    const Resumed r = SaveAndResume(l);
    ExpectBitwiseTail(r);
    EXPECT_THAT(r.log, HasSubstr("restored the gradient compression state of gradient_compression="));
  }
}

// The same checkpoint without the new field, as an older version wrote it:
// it loads, says that error feedback starts from zero, and the losses then
// differ from the uninterrupted run's (which shows that the state matters,
// i.e. that the bitwise test above can fail).
TEST_F(DataParallelResumeTest, CheckpointWithoutCompressionStateStartsFromZeroResiduals) {
  const Layout l{.name = "int8_old", .compression = GradientCompression::INT8};
  const std::vector<double> whole = MustTrain(WithLayout(TinyOptions(data_dir_), l)).losses;
  const std::string ckpt = Save(l);
  const std::string dir = checkpoint::StepCheckpointDir(ckpt, kSaveAt);
  const std::string meta_file = io::JoinPath(dir, "meta.textproto");
  std::ifstream in(meta_file);
  std::stringstream text;
  text << in.rdbuf();
  in.close();
  ASSERT_THAT(text.str(), HasSubstr("holds_compression_state: true"));
  std::ofstream(meta_file) << absl::StrReplaceAll(text.str(),
                                                 {{"holds_compression_state: true", ""}});
  std::string log;
  absl::StatusOr<TrainResult> tail = Resume(dir, l, &log);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_THAT(log, HasSubstr("holds no gradient compression state (an uncompressed run or an "
                             "older checkpoint): gradient_compression=INT8 starts its error "
                             "feedback from zero residuals"));
  ASSERT_EQ(tail->losses.size(), 8u - kSaveAt);
  bool any_differs = false;
  for (size_t s = 0; s < tail->losses.size(); ++s) {
    any_differs |= tail->losses[s] != whole[kSaveAt + s];
  }
  EXPECT_TRUE(any_differs) << "zero residuals should change the resumed losses";
}

// A tp 2 checkpoint as an earlier build wrote it (compressed buckets that
// mixed tp-split and tp-replicated parameters: no tp_replicated_buckets_apart)
// holds residuals of other buckets than this build's: the resume drops them
// with a logged line and runs on.
TEST_F(DataParallelResumeTest, EarlierBuildsCompressionStateAtTensorParallelIsDropped) {
  const Layout l{.name = "int8_tp2_old", .tp = 2, .compression = GradientCompression::INT8};
  const std::string ckpt = Save(l);
  const std::string dir = checkpoint::StepCheckpointDir(ckpt, kSaveAt);
  const std::string meta_file = io::JoinPath(dir, "meta.textproto");
  std::ifstream in(meta_file);
  std::stringstream text;
  text << in.rdbuf();
  in.close();
  ASSERT_THAT(text.str(), HasSubstr("tp_replicated_buckets_apart: true"));
  std::ofstream(meta_file) << absl::StrReplaceAll(text.str(),
                                                 {{"tp_replicated_buckets_apart: true", ""}});
  std::string log;
  absl::StatusOr<TrainResult> tail = Resume(dir, l, &log);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_THAT(log, HasSubstr("belongs to the buckets of an earlier build, which mixed tp-split "
                             "and tp-replicated parameters at tensor_parallel=2: dropped"));
  EXPECT_EQ(tail->losses.size(), 8u - kSaveAt);
}

// Where the state cannot follow, the resume logs why and runs on.
TEST_F(DataParallelResumeTest, StateThatCannotFollowIsDroppedWithALoggedLine) {
  const Layout int8{.name = "int8_drop", .compression = GradientCompression::INT8};
  const std::string compressed = Save(int8);
  std::string log;

  // Another layout (tp 2 x dp 2: other buckets): resharded, state dropped.
  Layout tp2 = int8;
  tp2.tp = 2;
  absl::StatusOr<TrainResult> resharded = Resume(compressed, tp2, &log);
  ASSERT_TRUE(resharded.ok()) << resharded.status();
  EXPECT_EQ(resharded->losses.size(), 8u - kSaveAt);
  EXPECT_THAT(log, HasSubstr("belongs to its own layout's buckets"));
  EXPECT_THAT(log, HasSubstr("layout.tensor_parallel: checkpoint 1, this job 2"));
  EXPECT_THAT(log, HasSubstr("dropped; error feedback restarts from zero residuals"));

  // Compression turned off.
  Layout none = int8;
  none.compression = GradientCompression::NONE;
  absl::StatusOr<TrainResult> uncompressed = Resume(compressed, none, &log);
  ASSERT_TRUE(uncompressed.ok()) << uncompressed.status();
  EXPECT_EQ(uncompressed->losses.size(), 8u - kSaveAt);
  EXPECT_THAT(log, HasSubstr("holds the gradient compression state of gradient_compression=INT8; "
                             "this run has gradient_compression=NONE, which keeps none: the "
                             "state is dropped"));

  // Compression turned on over an uncompressed checkpoint.
  Layout plain = none;
  plain.name = "plain_drop";
  Layout topk = int8;
  topk.compression = GradientCompression::TOPK;
  absl::StatusOr<TrainResult> started = Resume(Save(plain), topk, &log);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->losses.size(), 8u - kSaveAt);
  EXPECT_THAT(log, HasSubstr("gradient_compression=TOPK starts its error feedback from zero "
                             "residuals"));

  // Uncompressed to uncompressed: nothing to say.
  absl::StatusOr<TrainResult> quiet = Resume(Save(Layout{.name = "plain_quiet"}), none, &log);
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  EXPECT_THAT(log, Not(HasSubstr("gradient compression state")));
}

TEST_F(DataParallelResumeTest, LocalSgdAndGossipResumeEveryReplicaBitwise) {
  for (const Layout& l : {
           Layout{.name = "local_sgd", .dp_sync = topology::DpSync::LOCAL_SGD},
           Layout{.name = "gossip", .dp = 3, .dp_sync = topology::DpSync::GOSSIP},
       }) {
    SCOPED_TRACE(l.name);
    ExpectBitwiseTail(SaveAndResume(l));
  }
}

TEST_F(DataParallelResumeTest, DivergedReplicasAreNotReshardedSilently) {
  const Layout local{.name = "local_sgd_refused", .dp_sync = topology::DpSync::LOCAL_SGD};
  const std::string ckpt = Save(local);
  std::string log;
  Layout sync = local;
  sync.dp_sync = topology::DpSync::SYNC;
  absl::StatusOr<TrainResult> refused = Resume(ckpt, sync, &log);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("layout.dp_sync: checkpoint LOCAL_SGD, this job SYNC"));
  EXPECT_THAT(refused.status().message(),
              HasSubstr("its 2 replicas hold different parameters and AdamW moments"));
  Layout tp2 = local;
  tp2.tp = 2;
  refused = Resume(ckpt, tp2, &log);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("layout.tensor_parallel"));
}

// Offline conversion loads as a resume does: the state is carried into a
// checkpoint of the same layout (which then resumes bitwise), dropped with
// the logged line into another layout, and diverged replicas are refused.
TEST_F(DataParallelResumeTest, ConversionCarriesTheStateOnlyWithinItsLayout) {
  const Layout int8{.name = "int8_convert", .compression = GradientCompression::INT8};
  const std::vector<double> whole = MustTrain(WithLayout(TinyOptions(data_dir_), int8)).losses;
  const std::string ckpt = Save(int8);
  const std::string out = io::testing::FreshTestDir("dp_resume_converted");
  std::string log;

  ASSERT_TRUE(Convert(ckpt, int8, out + "/same", &log).ok()) << log;
  EXPECT_THAT(log, HasSubstr("restored the gradient compression state"));
  absl::StatusOr<TrainResult> tail = Resume(out + "/same", int8, &log);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_THAT(log, HasSubstr("restored the gradient compression state"));
  ExpectBitwiseTail({.whole = whole, .tail = tail->losses});

  Layout tp2 = int8;
  tp2.tp = 2;
  ASSERT_TRUE(Convert(ckpt, tp2, out + "/tp2", &log).ok()) << log;
  EXPECT_THAT(log, HasSubstr("dropped; error feedback restarts from zero residuals"));

  const Layout local{.name = "local_sgd_convert", .dp_sync = topology::DpSync::LOCAL_SGD};
  Layout local_tp2 = local;
  local_tp2.tp = 2;
  const absl::Status refused = Convert(Save(local), local_tp2, out + "/local_tp2", &log);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("replicas hold different parameters"));
}

}  // namespace
}  // namespace trident::training
