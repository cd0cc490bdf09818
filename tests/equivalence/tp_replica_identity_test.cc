// Gradient compression keeps the tensor-parallel replicas of replicated
// parameters identical (issue 12). Tensor parallelism replicates some
// parameters on every tp rank (LayerNorms, the row-parallel layers' output
// biases, the position embedding); their gradients are bitwise the same on
// every tp rank, so an exact data-parallel sum keeps the copies identical by
// construction. A compressor decides per bucket (int8's block scales, Top-K's
// picks and adaptive K, PowerSGD's factors, fp16's dynamic scale): if a
// bucket also held tp-split parameters, whose values differ across tp ranks,
// the replicas would receive different updates and drift apart, and the tp
// ranks would compute with different LayerNorm weights.
//
// For every compression mode, at tp 2 x dp 2 and tp 2 x pp 2 x dp 2 with
// sequence parallelism, several buckets (grad_bucket_mb 0.01): after every
// step, every tp-replicated parameter's value, its summed gradient, its fp32
// master (mixed precision) and both AdamW moments are bitwise equal on every
// tp rank of each (dp, pp) position. The tolerance is zero: bits are
// compared. The uncompressed rows show that the gradients entering the dp
// sum are already equal across tp (under sequence parallelism once summed
// over tp).

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "core/parameter.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "topology/layout.pb.h"
#include "training/optimizer.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

namespace trident::testing {
namespace {

constexpr int kSteps = 6;
constexpr uint64_t kSeed = 1234;

using topology::GradientCompression;

struct Mode {
  std::string name;
  GradientCompression::Method method = GradientCompression::NONE;
  bool topk_adaptive = false;
  training::Precision precision = training::FP32;
};

struct Case {
  Mode mode;
  LayoutRow row;
};

// gtest prints a failing case's parameter with this (not as raw bytes).
void PrintTo(const Case& c, std::ostream* os) { *os << c.mode.name << " " << c.row.Name(); }

bool BitwiseEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// (step, dp, pp, tp) -> "<what>/<name>" -> snapshot.
using Key = std::tuple<int, int, int, int>;
using Snapshots = std::map<Key, std::map<std::string, std::vector<float>>>;

// What world rank 0 sent over its dp group per step: bytes (all-reduce and
// all-gather payloads, ring sends) and collective calls.
struct DpTraffic {
  double bytes_per_step = 0;
  double calls_per_step = 0;
};

absl::Status Train(const Case& c, Snapshots& out, DpTraffic& traffic) {
  topology::ParallelLayout layout = c.row.ToLayout();
  layout.set_gradient_compression(c.mode.method);
  layout.set_topk_adaptive(c.mode.topk_adaptive);
  training::TrainConfig config = EquivalenceConfig(layout, kSteps);
  config.set_precision(c.mode.precision);
  std::mutex mu;
  return RunRanks(config, [&](RankRun& r) -> absl::Status {
    const topology::Coordinates at = r.grid.CoordinatesOf(r.rank);
    const data::RowRange rows = r.batch.ReplicaRows(at.dp);
    const int64_t vocab = config.model().vocab_size();
    const training::AdamW& adam = r.runner.optimizer();
    Tensor inputs, targets;
    for (int step = 0; step < kSteps; ++step) {
      training::SyntheticRows(kSeed, step, rows, r.batch.seq_length, vocab, &inputs, &targets);
      RETURN_IF_ERROR(
          r.runner.TrainStep(step, inputs, targets, r.batch.tokens_per_step()).status());
      std::map<std::string, std::vector<float>> taken;
      const std::vector<Tensor> fp32 =
          adam.has_masters() ? adam.Fp32Values() : std::vector<Tensor>();
      for (int i = 0; i < static_cast<int>(adam.params().size()); ++i) {
        const Parameter& p = *adam.params()[i];
        if (!p.layout.replicated()) continue;
        taken["value/" + p.name] = p.value.ToFloatVector();
        taken["grad/" + p.name] = p.grad.ToFloatVector();  // The step's dp sum.
        if (adam.has_masters()) taken["master/" + p.name] = fp32[i].ToFloatVector();
        taken["adam_m/" + p.name] = adam.exp_avg(i).ToFloatVector();
        taken["adam_v/" + p.name] = adam.exp_avg_sq(i).ToFloatVector();
      }
      std::lock_guard<std::mutex> lock(mu);
      out[{step, at.dp, at.pp, at.tp}] = std::move(taken);
    }
    if (r.rank == 0) {
      const comm::CommStats& stats = r.comms.dp->stats();
      int64_t bytes = 0;
      int64_t calls = 0;
      for (comm::CommOp op :
           {comm::CommOp::kAllReduce, comm::CommOp::kAllGather, comm::CommOp::kSend}) {
        bytes += stats.bytes_of(op);
        calls += stats.calls_of(op);
      }
      traffic = {.bytes_per_step = static_cast<double>(bytes) / kSteps,
                 .calls_per_step = static_cast<double>(calls) / kSteps};
    }
    return absl::OkStatus();
  });
}

class TpReplicaIdentity : public ::testing::TestWithParam<Case> {};

TEST_P(TpReplicaIdentity, ReplicatedParametersStayBitwiseEqualAcrossTpRanks) {
  const Case& c = GetParam();
  Snapshots snapshots;
  DpTraffic traffic;
  ASSERT_TRUE(Train(c, snapshots, traffic).ok());
  int compared = 0;
  int differing = 0;
  double worst = 0;  // Largest |difference| of an element (NaN counts as infinite).
  std::string first;
  for (const auto& [key, tensors] : snapshots) {
    const auto [step, dp, pp, tp] = key;
    if (tp == 0) continue;
    const auto& reference = snapshots.at({step, dp, pp, 0});
    ASSERT_EQ(tensors.size(), reference.size());
    ASSERT_FALSE(tensors.empty()) << "no tp-replicated parameter on pp stage " << pp;
    for (const auto& [name, got] : tensors) {
      const std::vector<float>& want = reference.at(name);
      ++compared;
      if (BitwiseEqual(got, want)) continue;
      ++differing;
      if (first.empty()) {
        first = absl::StrCat(name, " at step ", step + 1, " (dp ", dp, ", pp ", pp, ", tp ", tp,
                             " vs tp 0)");
      }
      for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        const double d = std::abs(static_cast<double>(got[i]) - want[i]);
        if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
      }
    }
  }
  std::printf(
      "%-14s %s: %d of %d tensor copies differ across tp ranks, largest |difference| %g; "
      "dp traffic of rank 0 per step: %.0f bytes in %.1f calls\n",
      c.mode.name.c_str(), c.row.Name().c_str(), differing, compared, worst, traffic.bytes_per_step,
      traffic.calls_per_step);
  EXPECT_EQ(differing, 0) << "first: " << first << "; largest |difference| " << worst;
}

std::vector<Case> Cases() {
  const std::vector<Mode> modes = {
      {.name = "none"},
      {.name = "bf16", .method = GradientCompression::BF16},
      {.name = "fp16", .method = GradientCompression::FP16},
      {.name = "int8", .method = GradientCompression::INT8},
      {.name = "topk", .method = GradientCompression::TOPK},
      {.name = "topk_adaptive", .method = GradientCompression::TOPK, .topk_adaptive = true},
      {.name = "powersgd", .method = GradientCompression::POWERSGD},
  };
  const std::vector<LayoutRow> rows = {
      LayoutRow{.tp = 2, .dp = 2, .micro_batches = 2, .grad_bucket_mb = 0.01},
      LayoutRow{.tp = 2,
                .pp = 2,
                .dp = 2,
                .micro_batches = 4,
                .sequence_parallel = true,
                .grad_bucket_mb = 0.01},
  };
  std::vector<Case> cases;
  for (const LayoutRow& row : rows) {
    for (const Mode& mode : modes) cases.push_back({mode, row});
  }
  // Mixed precision: the fp32 masters are checked too.
  cases.push_back(
      {{.name = "int8_bf16", .method = GradientCompression::INT8, .precision = training::BF16},
       rows[0]});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryMode, TpReplicaIdentity, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return absl::StrCat(info.param.mode.name, "_", info.param.row.Name());
                         });

}  // namespace
}  // namespace trident::testing
