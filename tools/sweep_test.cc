#include "tools/sweep_lib.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "core/io/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "planning/planner.h"
#include "training/data/token_file.h"
#include "training/train_config.h"
#include "training/trainer.h"

namespace trident::tools {
namespace {

using ::testing::HasSubstr;
using training::TrainConfig;

TrainConfig TinyConfig(const std::string& data_dir, int heads = 4) {
  TrainConfig c;
  auto* m = c.mutable_model();
  m->set_vocab_size(256);
  m->set_context_length(16);
  m->set_num_layers(4);
  m->set_num_heads(heads);
  m->set_hidden_size(8 * heads);
  auto* o = c.mutable_optimizer();
  o->set_learning_rate(3e-3);
  o->set_min_learning_rate(3e-4);
  o->set_warmup_steps(1);
  c.mutable_data()->set_train_path(data_dir + "/train.bin");
  c.mutable_data()->set_val_path(data_dir + "/val.bin");
  c.mutable_data()->set_seq_length(16);
  c.set_steps(5);
  c.set_eval_interval(0);
  c.set_log_interval(1000);
  return c;
}

std::string WriteCorpus(const std::string& dir) {
  const std::string text = "The quick brown fox jumps over the lazy dog. To be or not to be. ";
  std::vector<int32_t> tokens;
  for (int repeat = 0; repeat < 30; ++repeat) {
    for (unsigned char c : text) tokens.push_back((c + repeat) % 256);
  }
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/train.bin", 256, tokens));
  tokens.resize(1000);
  TRIDENT_CHECK_OK(data::WriteTokenFile(dir + "/val.bin", 256, tokens));
  return dir;
}

// The layout names of the space, listed by brute force over every tuple of
// small integers and filtered by the sweep's documented bounds.
std::set<std::string> BruteForceNames(int world, int batch, int layers) {
  std::set<std::string> names;
  for (int tp = 1; tp <= world; ++tp)
    for (int pp = 1; pp <= world; ++pp)
      for (int dp = 1; dp <= world; ++dp) {
        if (tp * pp * dp != world) continue;
        for (int mbs = 1; mbs <= batch; ++mbs) {
          const bool fits = batch % dp == 0 ? (batch / dp) % mbs == 0 : mbs == 1;
          if (!fits) continue;
          for (const char* sched : {"gpipe", "1f1b", "interleaved", "zb-h1"}) {
            for (int v = 1; v <= layers; ++v) {
              const bool interleaved = std::string(sched) == "interleaved";
              if (interleaved != (v >= 2) || (interleaved && v * pp > layers)) continue;
              if (pp == 1 && std::string(sched) != "1f1b") continue;
              for (int sp = 0; sp <= 1; ++sp) {
                if (sp && tp == 1) continue;
                std::string name = absl::StrCat("tp", tp, "-pp", pp, "-dp", dp, "-mbs", mbs,
                                                "-", sched);
                if (interleaved) absl::StrAppend(&name, "-v", v);
                if (sp) absl::StrAppend(&name, "-sp");
                names.insert(absl::StrCat(name, "-z0-rnone"));
              }
            }
          }
        }
      }
  return names;
}

TEST(EnumerateTest, World4MatchesBruteForceAndTheRulesByHand) {
  SweepSpace space;
  space.world_size = 4;
  space.global_batch_size = 8;
  auto candidates = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  const std::set<std::string> expected = BruteForceNames(4, 8, 4);
  std::set<std::string> got;
  int valid = 0, expected_valid = 0;
  for (const Candidate& c : *candidates) {
    got.insert(c.name);
    // The rules by hand for 4 heads, hidden 32, 4 layers, seq 16.
    const auto& l = c.config.layout();
    const int tp = l.tensor_parallel(), pp = l.pipeline_parallel(), dp = l.data_parallel();
    const int v = l.virtual_pipeline_stages(), mbs = l.micro_batch_size();
    const int micro_batches = 8 / (mbs * dp);
    bool ok = 4 % tp == 0 && 4 % (pp * v) == 0;
    if (l.schedule() == topology::INTERLEAVED_1F1B && pp > 1) ok = ok && micro_batches % pp == 0;
    expected_valid += ok;
    valid += c.status.ok();
    EXPECT_EQ(c.status.ok(), ok) << c.name << ": " << c.status;
    if (!c.status.ok()) {
      EXPECT_FALSE(c.status.message().empty()) << c.name;
    } else {
      EXPECT_EQ(l.num_micro_batches(), micro_batches) << c.name;
    }
  }
  EXPECT_EQ(candidates->size(), expected.size());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(valid, expected_valid);
  EXPECT_GT(valid, 0);
  EXPECT_LT(valid, static_cast<int>(candidates->size()));
}

TEST(EnumerateTest, InvalidLayoutsCarryTheTrainersMessage) {
  SweepSpace space;
  space.world_size = 3;
  space.global_batch_size = 6;
  auto candidates = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  std::map<std::string, absl::Status> by_name;
  for (const Candidate& c : *candidates) by_name[c.name] = c.status;
  ASSERT_TRUE(by_name.count("tp3-pp1-dp1-mbs1-1f1b-z0-rnone"));
  EXPECT_THAT(by_name["tp3-pp1-dp1-mbs1-1f1b-z0-rnone"].message(),
              HasSubstr("tensor_parallel=3 must divide num_heads=4"));
  // pp=3 does not split 4 layers.
  EXPECT_THAT(by_name["tp1-pp3-dp1-mbs2-gpipe-z0-rnone"].message(), HasSubstr("num_layers"));
  // The message is the one the trainer's validation gives for the same config.
  for (const Candidate& c : *candidates) {
    if (c.status.ok()) continue;
    TrainConfig config = c.config;
    absl::Status derive = topology::DeriveMicroBatches(config.mutable_layout());
    const absl::Status trainer = derive.ok() ? training::ValidateTrainConfig(config) : derive;
    EXPECT_EQ(c.status.message(), trainer.message()) << c.name;
  }
  // World 4 with a global batch of 6: dp=4 cannot split it.
  space.world_size = 4;
  candidates = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(candidates.ok());
  bool seen = false;
  for (const Candidate& c : *candidates) {
    if (c.name == "tp1-pp1-dp4-mbs1-1f1b-z0-rnone") {
      seen = true;
      EXPECT_FALSE(c.status.ok());
      EXPECT_THAT(c.status.message(), HasSubstr("global_batch_size"));
    }
  }
  EXPECT_TRUE(seen);
}

// A job this build cannot train is still planned, layout by layout.
TEST(EnumerateTest, PlanningChecksOnlyTheLayout) {
  SweepSpace space;
  space.world_size = 4;
  space.global_batch_size = 8;
  TrainConfig no_data = TinyConfig("");
  no_data.mutable_data()->set_tokenizer("no-such-tokenizer");
  auto run = EnumerateLayouts(no_data, space);
  space.check_runnable = false;
  auto plan = EnumerateLayouts(no_data, space);
  ASSERT_TRUE(run.ok() && plan.ok());
  ASSERT_EQ(run->size(), plan->size());
  // The layout's verdict is the trainer's for the same layout with data.
  SweepSpace runnable;
  runnable.world_size = 4;
  runnable.global_batch_size = 8;
  auto with_data = EnumerateLayouts(TinyConfig("/tmp/unused"), runnable);
  ASSERT_TRUE(with_data.ok());
  ASSERT_EQ(with_data->size(), plan->size());
  int planned = 0;
  for (size_t i = 0; i < run->size(); ++i) {
    EXPECT_THAT((*run)[i].status.message(), HasSubstr("tokenizer"));
    EXPECT_EQ((*plan)[i].status, (*with_data)[i].status) << (*plan)[i].name;
    planned += (*plan)[i].status.ok();
  }
  EXPECT_GT(planned, 0);
}

TEST(EnumerateTest, ZeroAndRecomputeListsMultiplyTheSpace) {
  SweepSpace space;
  space.world_size = 2;
  space.global_batch_size = 4;
  auto one = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  space.zero_stages = {0, 1, 2, 3};
  space.recompute = {topology::Recompute::NONE, topology::Recompute::FULL};
  auto many = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(one.ok() && many.ok());
  EXPECT_EQ(many->size(), one->size() * 8);
  space.zero_stages = {4};
  EXPECT_FALSE(EnumerateLayouts(TinyConfig("/tmp/unused"), space).ok());
}

// Compression is a dimension of the sweep: each layout gets a compressed twin
// that runs where the trainer accepts it and is refused by the trainer's own
// message where it does not (compression needs ZeRO 0); planned, it sends
// fewer dp bytes.
TEST(EnumerateTest, CompressionIsADimensionRefusedByNameWithZero) {
  SweepSpace space;
  space.world_size = 2;
  space.global_batch_size = 4;
  space.zero_stages = {0, 1};
  auto one = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  space.compressions = {topology::GradientCompression::NONE, topology::GradientCompression::BF16};
  auto run = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  space.check_runnable = false;
  auto planned = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(one.ok() && run.ok() && planned.ok());
  EXPECT_EQ(run->size(), 2 * one->size());
  // The innermost dimension: each layout, then its bf16 twin.
  int runnable = 0, refused = 0;
  for (size_t i = 0; i + 1 < run->size(); i += 2) {
    const Candidate& plain = (*run)[i];
    const Candidate& bf16 = (*run)[i + 1];
    EXPECT_EQ(plain.name.find("-c"), std::string::npos) << plain.name;
    ASSERT_EQ(bf16.name, plain.name + "-cbf16");
    if (!plain.status.ok()) {
      EXPECT_FALSE(bf16.status.ok()) << bf16.name;
      continue;
    }
    if (plain.config.layout().zero_stage() == 0) {
      EXPECT_TRUE(bf16.status.ok()) << bf16.name << ": " << bf16.status;
      ++runnable;
      continue;
    }
    EXPECT_FALSE(bf16.status.ok()) << bf16.name;
    ++refused;
    EXPECT_THAT(std::string(bf16.status.message()), HasSubstr("gradient_compression=bf16"))
        << bf16.name;
    EXPECT_THAT(std::string(bf16.status.message()), HasSubstr("zero_stage")) << bf16.name;
  }
  EXPECT_GT(runnable, 0);
  EXPECT_GT(refused, 0);
  auto hw = planning::LoadHardware("configs/hardware/cpu_2core.textproto");
  ASSERT_TRUE(hw.ok());
  for (size_t i = 0; i + 1 < planned->size(); i += 2) {
    const Candidate& plain = (*planned)[i];
    const Candidate& bf16 = (*planned)[i + 1];
    ASSERT_EQ(bf16.name, plain.name + "-cbf16");
    if (!plain.status.ok() || plain.config.layout().data_parallel() == 1 ||
        plain.config.layout().zero_stage() != 0) {
      continue;
    }
    EXPECT_TRUE(bf16.status.ok()) << bf16.name << ": " << bf16.status;
    auto a = planning::PlanStep(plain.config, *hw, training::FP32);
    auto b = planning::PlanStep(bf16.config, *hw, training::FP32);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(b->comm_bytes_per_step, a->comm_bytes_per_step) << bf16.name;
  }
}

// Enumeration counts against the brute-force list for several small worlds.
TEST(EnumerateTest, CountsMatchBruteForceForSmallWorlds) {
  for (int world : {1, 2, 3, 6, 8}) {
    for (int batch : {4, 6, 8}) {
      SweepSpace space;
      space.world_size = world;
      space.global_batch_size = batch;
      auto candidates = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
      ASSERT_TRUE(candidates.ok());
      std::set<std::string> got;
      for (const Candidate& c : *candidates) got.insert(c.name);
      EXPECT_EQ(got.size(), candidates->size()) << "duplicate names, world " << world;
      EXPECT_EQ(got, BruteForceNames(world, batch, 4)) << "world " << world << " batch " << batch;
    }
  }
}

// Limits on each dimension narrow the space to the brute-force list's
// layouts within them.
TEST(EnumerateTest, LimitsNarrowEachDimension) {
  SweepSpace space;
  space.world_size = 8;
  space.global_batch_size = 8;
  space.max_tp = 2;
  space.max_pp = 4;
  space.max_dp = 4;
  space.max_micro_batch_size = 2;
  space.schedules = {topology::ONE_F_ONE_B, topology::INTERLEAVED_1F1B};
  auto candidates = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_TRUE(candidates.ok());
  std::set<std::string> expected;
  for (const std::string& name : BruteForceNames(8, 8, 4)) {
    int tp = 0, pp = 0, dp = 0, mbs = 0;
    ASSERT_EQ(std::sscanf(name.c_str(), "tp%d-pp%d-dp%d-mbs%d", &tp, &pp, &dp, &mbs), 4);
    const bool schedule_ok = pp == 1 || name.find("-1f1b") != std::string::npos ||
                             name.find("-interleaved") != std::string::npos;
    if (tp <= 2 && pp <= 4 && dp <= 4 && mbs <= 2 && schedule_ok) expected.insert(name);
  }
  std::set<std::string> got;
  for (const Candidate& c : *candidates) got.insert(c.name);
  EXPECT_EQ(got, expected);
  EXPECT_FALSE(expected.empty());
  space.max_dp = -1;
  auto refused = EnumerateLayouts(TinyConfig("/tmp/unused"), space);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--max_dp=-1"));
}

TEST(SpearmanTest, KnownValues) {
  EXPECT_DOUBLE_EQ(SpearmanCorrelation({1, 2, 3, 4}, {10, 20, 30, 45}), 1.0);
  EXPECT_DOUBLE_EQ(SpearmanCorrelation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // d = (0, 0, 1, -1): 1 - 6 * 2 / (4 * 15) = 0.8.
  EXPECT_NEAR(SpearmanCorrelation({1, 2, 3, 4}, {1, 2, 4, 3}), 0.8, 1e-12);
  EXPECT_TRUE(std::isnan(SpearmanCorrelation({1}, {1})));
}

TEST(CsvTest, RoundTripsQuotedReasons) {
  SweepRow r;
  r.layout = "tp1-pp1-dp1-mbs1-1f1b-z0-rnone";
  r.tp = r.pp = r.dp = r.micro_batch_size = 1;
  r.schedule = "1f1b";
  r.recompute = "none";
  r.status = "invalid";
  r.reason = "layout: a, \"quoted\" rule";
  r.predicted_step_s = 0.25;
  auto back = RowsFromCsv(RowsToCsv({r}));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].reason, r.reason);
  EXPECT_EQ((*back)[0].predicted_step_s, 0.25);
  EXPECT_TRUE(std::isnan((*back)[0].measured_step_s));
}

class SweepRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = WriteCorpus(io::testing::FreshTestDir("sweep_data"));
    out_dir_ = io::testing::FreshTestDir("sweep_out");
    auto hw = planning::LoadHardware("configs/hardware/cpu_2core.textproto");
    TRIDENT_CHECK_OK(hw.status());
    options_.hardware = *hw;
    options_.space.world_size = 4;
    options_.space.global_batch_size = 8;
    options_.steps = 3;
    options_.top_n = 5;
    options_.threads = 1;
    options_.out_dir = out_dir_;
    options_.log = &log_;
  }
  std::string data_dir_, out_dir_;
  SweepOptions options_;
  std::ostringstream log_;
};

int CountStatus(const std::vector<SweepRow>& rows, const std::string& status) {
  int n = 0;
  for (const SweepRow& r : rows) n += r.status == status;
  return n;
}

TEST_F(SweepRunTest, RealSweepWritesEverythingTheBestTrainsAndItResumes) {
  const TrainConfig base = TinyConfig(data_dir_);
  auto candidates = EnumerateLayouts(base, options_.space);
  ASSERT_TRUE(candidates.ok());
  auto summary = RunSweep(base, options_);
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << log_.str();
  EXPECT_EQ(summary->rows.size(), candidates->size());
  EXPECT_EQ(summary->evaluated, static_cast<int>(candidates->size()));
  EXPECT_EQ(summary->skipped, 0);
  EXPECT_EQ(CountStatus(summary->rows, "ok"), 5) << log_.str();
  EXPECT_GT(CountStatus(summary->rows, "invalid"), 0);
  EXPECT_EQ(summary->measured_pairs, 5);
  EXPECT_FALSE(std::isnan(summary->median_step_error));
  // Ranked: measured rows first, by measured tokens/s.
  for (int i = 0; i + 1 < 5; ++i) {
    EXPECT_EQ(summary->rows[i].status, "ok");
    EXPECT_GE(summary->rows[i].measured_tokens_per_s, summary->rows[i + 1].measured_tokens_per_s);
    EXPECT_GT(summary->rows[i].measured_peak_memory_bytes, 0);
    EXPECT_GT(summary->rows[i].predicted_step_s, 0);
  }
  for (const SweepRow& r : summary->rows) {
    if (r.status != "ok") continue;
    // The bubble: none with one stage; with more, the replay of measured
    // action times leaves some, as the planner's replay does.
    ASSERT_FALSE(std::isnan(r.measured_bubble)) << r.layout;
    EXPECT_GT(r.measured_makespan_s, 0) << r.layout;
    EXPECT_GT(r.measured_cpu_s, 0) << r.layout;
    EXPECT_GT(r.predicted_cpu_s, 0) << r.layout;
    EXPECT_GT(r.predicted_makespan_s, 0) << r.layout;
    ASSERT_FALSE(std::isnan(r.predicted_bubble)) << r.layout;
    if (r.pp == 1) {
      EXPECT_EQ(r.measured_bubble, 0) << r.layout;
      EXPECT_NEAR(r.predicted_bubble, 0, 1e-12) << r.layout;
    } else {
      EXPECT_GT(r.measured_bubble, 0) << r.layout;
      EXPECT_LT(r.measured_bubble, 1) << r.layout;
      EXPECT_GT(r.predicted_bubble, 0) << r.layout;
    }
    // Bytes per step: the planner counts every collective and message the
    // trainer issues (ZeRO 0 here); a few scalars (loss, gradient norm: under
    // 64 bytes per rank) are the only difference.
    ASSERT_FALSE(std::isnan(r.measured_comm_bytes)) << r.layout;
    EXPECT_GE(r.measured_comm_bytes, r.predicted_comm_bytes) << r.layout;
    EXPECT_LE(r.measured_comm_bytes, r.predicted_comm_bytes + 64 * 4) << r.layout;
  }
  EXPECT_EQ(summary->best_layout, summary->rows[0].layout);

  const std::string csv = io::testing::ReadWholeFile(out_dir_ + "/results.csv");
  auto rows = RowsFromCsv(csv);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), candidates->size());
  for (const SweepRow& r : *rows) {
    if (r.status == "invalid") {
      EXPECT_FALSE(r.reason.empty()) << r.layout;
    }
  }
  const std::string md = io::testing::ReadWholeFile(out_dir_ + "/results.md");
  EXPECT_THAT(md, HasSubstr("Spearman rank correlation"));
  EXPECT_THAT(md, HasSubstr("median relative error of step time"));
  EXPECT_THAT(md, HasSubstr("of the replayed makespan"));
  EXPECT_THAT(md, HasSubstr("1-minute load average"));
  EXPECT_FALSE(std::isnan(summary->median_makespan_error));
  EXPECT_THAT(md, HasSubstr("| 1 | " + summary->best_layout + " | ok |"));
  const std::string svg = io::testing::ReadWholeFile(out_dir_ + "/chart.svg");
  EXPECT_THAT(svg, HasSubstr("<svg"));
  EXPECT_THAT(svg, HasSubstr(summary->best_layout));
  EXPECT_THAT(svg, HasSubstr("invalid: "));

  // The best layout's textproto trains.
  auto best = training::LoadTrainConfig(out_dir_ + "/best_layout.textproto");
  ASSERT_TRUE(best.ok()) << best.status();
  training::TrainOptions train;
  train.config = *best;
  train.config.set_steps(2);
  train.threads = 1;
  std::ostringstream sink;
  train.log = &sink;
  auto trained = training::Train(train);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_EQ(trained->losses.size(), 2u);
  const auto& bl = best->layout();
  EXPECT_EQ(bl.tensor_parallel() * bl.pipeline_parallel() * bl.data_parallel(), 4);

  // Started again: every layout is skipped, nothing runs.
  log_.str("");
  auto again = RunSweep(base, options_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->skipped, static_cast<int>(candidates->size()));
  EXPECT_EQ(again->evaluated, 0);
  EXPECT_THAT(log_.str(), ::testing::Not(HasSubstr("[1/")));
  EXPECT_EQ(again->best_layout, summary->best_layout);

  // Interrupted after a few rows: only the missing layouts are evaluated.
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  const int kept = 10;
  std::string truncated;
  for (int i = 0; i <= kept; ++i) absl::StrAppend(&truncated, lines[i], "\n");
  io::testing::WriteWholeFile(out_dir_ + "/results.csv", truncated);
  auto resumed = RunSweep(base, options_);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->skipped, kept);
  EXPECT_EQ(resumed->evaluated, static_cast<int>(candidates->size()) - kept);
  EXPECT_EQ(resumed->rows.size(), candidates->size());
}

// --backend=mpi: each candidate is //tools:train under mpirun (BUILD_NOTES.md:
// as root, oversubscribed), measured from its own metrics file.
TEST_F(SweepRunTest, MpiBackendRunsEachCandidateUnderMpirun) {
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun";
  const TrainConfig base = TinyConfig(data_dir_);
  options_.backend = "mpi";
  options_.train_binary = "tools/train";
  options_.space.world_size = 2;
  options_.top_n = 2;
  options_.steps = 2;
  auto summary = RunSweep(base, options_);
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << log_.str();
  ASSERT_EQ(CountStatus(summary->rows, "ok"), 2) << log_.str();
  for (int i = 0; i < 2; ++i) {
    const SweepRow& r = summary->rows[i];
    const std::string prefix = out_dir_ + "/runs/" + r.layout;
    EXPECT_TRUE(std::filesystem::exists(prefix + ".textproto")) << r.layout;
    EXPECT_THAT(io::testing::ReadWholeFile(prefix + ".log"), HasSubstr("mpi backend"));
    EXPECT_GT(r.measured_tokens_per_s, 0);
    EXPECT_GT(r.measured_peak_memory_bytes, 0);
    EXPECT_GE(r.measured_comm_bytes, r.predicted_comm_bytes) << r.layout;
    EXPECT_LE(r.measured_comm_bytes, r.predicted_comm_bytes + 64 * 2) << r.layout;
  }
}

TEST_F(SweepRunTest, UnknownBackendOrMpiWithoutTrainBinaryIsRefused) {
  const TrainConfig base = TinyConfig(data_dir_);
  options_.backend = "nccl";
  auto summary = RunSweep(base, options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("--backend=nccl"));
  options_.backend = "mpi";
  summary = RunSweep(base, options_);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(), HasSubstr("--train_binary"));
}

TEST_F(SweepRunTest, PredictRunsNothingAndTheBudgetIsEnforced) {
  const TrainConfig base = TinyConfig(data_dir_);
  options_.predict = true;
  options_.memory_budget_bytes = 1;  // nothing fits
  auto summary = RunSweep(base, options_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(CountStatus(summary->rows, "ok"), 0);
  EXPECT_EQ(CountStatus(summary->rows, "predicted"), 0);
  EXPECT_GT(CountStatus(summary->rows, "over_budget"), 0);
  EXPECT_TRUE(summary->best_layout.empty());
  EXPECT_FALSE(std::filesystem::exists(out_dir_ + "/best_layout.textproto"));
  for (const SweepRow& r : summary->rows) {
    if (r.status == "over_budget") {
      EXPECT_THAT(r.reason, HasSubstr("budget"));
    }
  }

  const std::string other = io::testing::FreshTestDir("sweep_predict");
  options_.out_dir = other;
  options_.memory_budget_bytes = 0;
  summary = RunSweep(base, options_);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(CountStatus(summary->rows, "ok"), 0);
  EXPECT_GT(CountStatus(summary->rows, "predicted"), 5);
  EXPECT_TRUE(std::isnan(summary->median_step_error));
  EXPECT_EQ(summary->rows[0].status, "predicted");
  EXPECT_GE(summary->rows[0].predicted_tokens_per_s, summary->rows[1].predicted_tokens_per_s);
  EXPECT_TRUE(std::filesystem::exists(other + "/best_layout.textproto"));
  EXPECT_FALSE(std::filesystem::exists(other + "/runs/" + summary->best_layout + ".jsonl"));
}

}  // namespace
}  // namespace trident::tools
