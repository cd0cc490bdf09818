// Every layout trains the serial model (DESIGN.md rule 2), in one table: each
// row is a named test case (e.g. LayoutEquivalence/ThreeD.TrainsTheSerialModel/
// tp2_pp2_dp2_mbs1_m4_1f1b) that trains 20 steps through the trainer's own step
// and compares loss per step, every gradient after step 1, every parameter
// after step 20 and the validation loss with the serial run of the same
// global batch (tests/common/layout_equivalence.h), relative 1e-5, fp32; the
// MixedPrecision rows against the serial run of their own precision, within
// EquivalenceTolerance (bf16/fp16: per quantity, stated and justified there).
//
// A new feature that must not change the arithmetic adds rows here, nothing
// else. Bazel shards the cases (BUILD: shard_count); each shard trains the
// serial runs it needs once.

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/common/layout_equivalence.h"
#include "tests/common/serial_comparison.h"
#include "topology/layout.pb.h"

namespace trident::testing {
namespace {

using topology::GPIPE;
using topology::INTERLEAVED_1F1B;
using topology::ONE_F_ONE_B;
using topology::ZERO_BUBBLE_H1;

class LayoutEquivalence : public ::testing::TestWithParam<LayoutRow> {};

TEST_P(LayoutEquivalence, TrainsTheSerialModel) {
  const training::TrainConfig config = GetParam().ToConfig();
  const TrainedRun& serial = SerialRun(config);
  absl::StatusOr<TrainedRun> run = TrainLayout(config);
  ASSERT_TRUE(run.ok()) << run.status();
  const Differences worst = ExpectSameTraining(*run, serial, config, EquivalenceTolerance(config));
  // For the record (the README quotes these).
  std::printf("%s: worst relative difference: loss %.3g, gradients %.3g, parameters %.3g, "
              "validation loss %.3g\n",
              GetParam().Name().c_str(), worst.loss, worst.gradients, worst.parameters,
              worst.val_loss);
}

std::string RowName(const ::testing::TestParamInfo<LayoutRow>& info) { return info.param.Name(); }

// The memory-efficient attention over long sequences: 320 tokens span five
// query tiles and two key tiles (the online softmax across tiles), with heads
// split by tp, sequence parallelism, pipelining, dp and selective
// recomputation (which recomputes the log-sum-exp).
INSTANTIATE_TEST_SUITE_P(
    LongSequences, LayoutEquivalence,
    ::testing::Values(LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 2, .seq_length = 320},
                      LayoutRow{.tp = 2, .micro_batches = 2, .sequence_parallel = true,
                                .recompute = topology::Recompute::SELECTIVE, .seq_length = 320}),
    RowName);

// Tensor parallelism, with and without sequence parallelism.
INSTANTIATE_TEST_SUITE_P(
    TensorParallel, LayoutEquivalence,
    ::testing::Values(LayoutRow{.tp = 2, .micro_batch_size = 2, .micro_batches = 2},
                      LayoutRow{.tp = 4, .micro_batch_size = 2, .micro_batches = 2},
                      LayoutRow{.tp = 2, .micro_batch_size = 2, .micro_batches = 2,
                                .sequence_parallel = true},
                      LayoutRow{.tp = 4, .micro_batch_size = 2, .micro_batches = 2,
                                .sequence_parallel = true},
                      LayoutRow{.tp = 2, .micro_batch_size = 4, .micro_batches = 2}),
    RowName);

// Data parallelism, alone and with tensor parallelism.
INSTANTIATE_TEST_SUITE_P(
    DataParallel, LayoutEquivalence,
    ::testing::Values(LayoutRow{.dp = 2, .micro_batch_size = 4},
                      LayoutRow{.dp = 4, .micro_batch_size = 2},
                      LayoutRow{.dp = 2, .micro_batch_size = 1, .micro_batches = 4},
                      LayoutRow{.tp = 2, .dp = 2, .micro_batch_size = 1, .micro_batches = 4},
                      LayoutRow{.tp = 2, .dp = 2, .micro_batch_size = 1, .micro_batches = 4,
                                .sequence_parallel = true}),
    RowName);

// Bucketed data-parallel reduction (data_parallel/grad_buckets.h): dp 2 and
// 4, micro-batches 1 and 4, the buckets' all-reduces overlapped with the
// backward or run after it, in 0.01 MiB buckets (several per model).
std::vector<LayoutRow> BucketRows() {
  std::vector<LayoutRow> rows;
  for (int dp : {2, 4}) {
    for (int m : {1, 4}) {
      for (bool overlap : {true, false}) {
        rows.push_back({.dp = dp, .micro_batch_size = m == 1 ? 8 / dp : 1, .micro_batches = m,
                        .overlap_grad_reduce = overlap, .grad_bucket_mb = 0.01});
      }
    }
  }
  return rows;
}
INSTANTIATE_TEST_SUITE_P(GradientBuckets, LayoutEquivalence, ::testing::ValuesIn(BucketRows()),
                         RowName);

// ZeRO stage 1: AdamW state sharded over dp (reduce-scatter, update of the
// owned windows, all-gather); stage 2: gradients sharded too (each
// micro-batch's buckets reduce-scattered from a shared pool into the
// shards). dp 2 and 4, micro-batches 1 and 4, with one bucket and with
// several; then with tp and pp.
std::vector<LayoutRow> ZeroRows() {
  std::vector<LayoutRow> rows;
  for (int zero : {1, 2}) {
    for (int dp : {2, 4}) {
      for (int m : {1, 4}) {
        for (double bucket_mb : {25.0, 0.01}) {
          rows.push_back({.dp = dp, .micro_batch_size = m == 1 ? 8 / dp : 1, .micro_batches = m,
                          .grad_bucket_mb = bucket_mb, .zero_stage = zero});
        }
      }
    }
  }
  rows.push_back({.dp = 2, .micro_batches = 4, .overlap_grad_reduce = false,
                  .grad_bucket_mb = 0.01, .zero_stage = 2});
  for (auto schedule : {ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = schedule,
                    .grad_bucket_mb = 0.01, .zero_stage = 2});
  }
  // Interleaving: a bucket spans two chunks whose W run apart.
  rows.push_back({.pp = 2, .dp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2, .grad_bucket_mb = 0.01, .zero_stage = 2});
  for (auto schedule : {ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = schedule,
                    .grad_bucket_mb = 0.01, .zero_stage = 1});
  }
  rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batch_size = 2, .micro_batches = 2,
                  .sequence_parallel = true, .grad_bucket_mb = 0.01, .zero_stage = 1});
  return rows;
}
INSTANTIATE_TEST_SUITE_P(Zero, LayoutEquivalence, ::testing::ValuesIn(ZeroRows()), RowName);

// ZeRO stage 3: parameter values sharded too, each layer gathered before its
// forward and its input-gradient pass (the next one prefetched) and freed
// after; with micro-batches, pipelines (each stage shards its own chunks over
// its dp group), tensor parallelism (shards of the tp shard), sequence
// parallelism (late buckets), zero-bubble and interleaved schedules. And the
// issue's dp = 8, for every stage.
std::vector<LayoutRow> Zero3Rows() {
  std::vector<LayoutRow> rows;
  for (int dp : {2, 4}) {
    for (int m : {1, 4}) {
      rows.push_back({.dp = dp, .micro_batch_size = m == 1 ? 8 / dp : 1, .micro_batches = m,
                      .grad_bucket_mb = 0.01, .zero_stage = 3});
    }
  }
  rows.push_back({.dp = 2, .micro_batches = 4, .grad_bucket_mb = 25, .zero_stage = 3});
  for (auto schedule : {ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = schedule,
                    .grad_bucket_mb = 0.01, .zero_stage = 3});
  }
  rows.push_back({.pp = 2, .dp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2, .grad_bucket_mb = 0.01, .zero_stage = 3});
  rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batch_size = 2, .micro_batches = 2,
                  .sequence_parallel = true, .grad_bucket_mb = 0.01, .zero_stage = 3});
  // dp = 8 for every stage, with 1 and 4 micro-batches.
  for (int zero : {0, 1, 2, 3}) {
    for (int m : {1, 4}) {
      rows.push_back({.dp = 8, .micro_batch_size = 1, .micro_batches = m, .grad_bucket_mb = 0.01,
                      .zero_stage = zero});
    }
  }
  return rows;
}
INSTANTIATE_TEST_SUITE_P(Zero3, LayoutEquivalence, ::testing::ValuesIn(Zero3Rows()), RowName);

// ZeRO-Offload: the optimizer state and update on the host, over each ZeRO
// stage (tests/equivalence/cpu_offload_test.cc: bitwise the same as without).
INSTANTIATE_TEST_SUITE_P(
    CpuOffload, LayoutEquivalence,
    ::testing::Values(LayoutRow{.dp = 2, .micro_batch_size = 4, .grad_bucket_mb = 0.01,
                                .zero_stage = 1, .cpu_offload = true},
                      LayoutRow{.dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01,
                                .zero_stage = 2, .cpu_offload = true},
                      LayoutRow{.dp = 4, .micro_batch_size = 1, .micro_batches = 2,
                                .grad_bucket_mb = 0.01, .zero_stage = 3, .cpu_offload = true},
                      LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4,
                                .schedule = ZERO_BUBBLE_H1, .grad_bucket_mb = 0.01,
                                .zero_stage = 3, .cpu_offload = true}),
    RowName);

// Ring and tree all-reduce of the gradient buckets (dp_allreduce), several
// buckets each, dp 3 and 5 (odd rings, incomplete trees), and under 3D.
INSTANTIATE_TEST_SUITE_P(
    DpAllReduce, LayoutEquivalence,
    ::testing::Values(LayoutRow{.dp = 4, .micro_batch_size = 2, .grad_bucket_mb = 0.01,
                                .dp_allreduce = topology::DpAllReduce::RING},
                      LayoutRow{.dp = 3, .micro_batches = 2, .grad_bucket_mb = 0.01,
                                .dp_allreduce = topology::DpAllReduce::RING},
                      LayoutRow{.dp = 5, .micro_batches = 2, .grad_bucket_mb = 0.01,
                                .dp_allreduce = topology::DpAllReduce::TREE},
                      LayoutRow{.dp = 4, .micro_batch_size = 2, .grad_bucket_mb = 0.01,
                                .dp_allreduce = topology::DpAllReduce::TREE},
                      LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4,
                                .grad_bucket_mb = 0.01,
                                .dp_allreduce = topology::DpAllReduce::RING},
                      LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4,
                                .dp_allreduce = topology::DpAllReduce::TREE}),
    RowName);

// The parameter server with staleness 0 (dp_sync=ps; tests/equivalence/
// ps_training_test.cc: bitwise the same as sync): 1 and 2 server ranks beside
// dp 2 and 4 workers, and in bf16.
INSTANTIATE_TEST_SUITE_P(
    ParameterServer, LayoutEquivalence,
    ::testing::Values(LayoutRow{.dp = 2, .micro_batch_size = 2, .ps_servers = 1},
                      LayoutRow{.dp = 4, .micro_batches = 2, .ps_servers = 2},
                      LayoutRow{.dp = 2, .micro_batch_size = 2, .precision = training::BF16,
                                .ps_servers = 2}),
    RowName);

// Pipelines: pp in {2, 4}, m in {1, p, 2p, 8}, every schedule (interleaved
// with v = 2 where m % p == 0).
std::vector<LayoutRow> PipelineRows() {
  std::vector<LayoutRow> rows;
  for (int p : {2, 4}) {
    for (int m : p == 2 ? std::vector<int>{1, 2, 4, 8} : std::vector<int>{1, 4, 8}) {
      for (auto schedule : {GPIPE, ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
        rows.push_back({.pp = p, .micro_batches = m, .schedule = schedule});
      }
      if (m % p == 0) {
        rows.push_back(
            {.pp = p, .micro_batches = m, .schedule = INTERLEAVED_1F1B, .virtual_stages = 2});
      }
    }
  }
  // Uneven splits.
  rows.push_back({.pp = 2, .micro_batches = 4, .layers_per_stage = {3, 5}});
  rows.push_back(
      {.pp = 4, .micro_batches = 4, .schedule = ZERO_BUBBLE_H1, .layers_per_stage = {1, 2, 4, 1}});
  rows.push_back({.pp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B, .virtual_stages = 2,
                  .layers_per_stage = {1, 3, 2, 2}});
  // Larger micro-batches.
  rows.push_back({.pp = 2, .micro_batch_size = 4, .micro_batches = 2});
  rows.push_back({.pp = 2, .micro_batch_size = 2, .micro_batches = 4, .schedule = GPIPE});
  return rows;
}
INSTANTIATE_TEST_SUITE_P(Pipeline, LayoutEquivalence, ::testing::ValuesIn(PipelineRows()),
                         RowName);

// Pipelines with tensor parallelism, and all three dimensions at once.
INSTANTIATE_TEST_SUITE_P(
    ThreeD, LayoutEquivalence,
    ::testing::Values(
        LayoutRow{.tp = 2, .pp = 2, .micro_batches = 4},
        LayoutRow{.tp = 2, .pp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = ZERO_BUBBLE_H1},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2},
        // Several buckets per stage, reduced over each stage's dp group while
        // the pipeline's backward runs (zero-bubble: W late).
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = ZERO_BUBBLE_H1,
                  .grad_bucket_mb = 0.01},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .overlap_grad_reduce = false,
                  .grad_bucket_mb = 0.01}),
    RowName);

// Sequence parallelism across pipeline stages: the row chunks cross them.
INSTANTIATE_TEST_SUITE_P(
    SequenceParallelPipeline, LayoutEquivalence,
    ::testing::Values(
        LayoutRow{.tp = 2, .pp = 2, .micro_batches = 4, .sequence_parallel = true},
        LayoutRow{.tp = 2, .pp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2, .sequence_parallel = true},
        LayoutRow{.tp = 2, .pp = 2, .micro_batches = 4, .schedule = ZERO_BUBBLE_H1,
                  .sequence_parallel = true},
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batch_size = 2, .micro_batches = 2,
                  .sequence_parallel = true},
        LayoutRow{.tp = 4, .pp = 2, .micro_batches = 4, .sequence_parallel = true},
        // The LayerNorm partial sums and the tied embedding in late buckets.
        LayoutRow{.tp = 2, .pp = 2, .dp = 2, .micro_batch_size = 2, .micro_batches = 2,
                  .sequence_parallel = true, .grad_bucket_mb = 0.01}),
    RowName);

// Activation recomputation (transformer/block.h): selective (the attention
// core) and full (each block's forward again in its backward), against the
// serial run that keeps every activation. Zero-bubble keeps what W needs
// from B; ZeRO 3 gathers the values again for the recomputed forward.
std::vector<LayoutRow> RecomputeRows() {
  std::vector<LayoutRow> rows;
  for (auto policy : {topology::Recompute::SELECTIVE, topology::Recompute::FULL}) {
    rows.push_back({.micro_batches = 4, .recompute = policy});
    rows.push_back({.tp = 2, .micro_batch_size = 2, .micro_batches = 2, .sequence_parallel = true,
                    .recompute = policy});
    for (auto schedule : {ONE_F_ONE_B, ZERO_BUBBLE_H1}) {
      rows.push_back({.pp = 2, .micro_batches = 4, .schedule = schedule, .recompute = policy});
    }
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01,
                    .zero_stage = 1, .recompute = policy});
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = ZERO_BUBBLE_H1,
                    .sequence_parallel = true, .grad_bucket_mb = 0.01, .zero_stage = 3,
                    .recompute = policy});
  }
  return rows;
}
INSTANTIATE_TEST_SUITE_P(Recompute, LayoutEquivalence, ::testing::ValuesIn(RecomputeRows()),
                         RowName);

// The flagship: every factorisation of 8 ranks as tp x pp x dp that an
// 8-head, 8-layer model admits, each with 1F1B (global batch 8 sequences),
// plus samples with interleaving, ZB-H1, sequence parallelism, every ZeRO
// stage and each recomputation policy.
std::vector<LayoutRow> FlagshipRows() {
  std::vector<LayoutRow> rows;
  for (int tp : {1, 2, 4, 8}) {
    for (int pp : {1, 2, 4, 8}) {
      if (8 % (tp * pp) != 0) continue;
      const int dp = 8 / (tp * pp);
      rows.push_back({.tp = tp, .pp = pp, .dp = dp, .micro_batch_size = 1,
                      .micro_batches = 8 / dp, .heads = 8});
    }
  }
  rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .schedule = INTERLEAVED_1F1B,
                  .virtual_stages = 2, .heads = 8});
  rows.push_back({.tp = 2, .pp = 4, .micro_batches = 8, .schedule = ZERO_BUBBLE_H1, .heads = 8});
  rows.push_back({.tp = 4, .pp = 2, .micro_batches = 8, .sequence_parallel = true, .heads = 8});
  for (int zero : {1, 2, 3}) {
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01,
                    .zero_stage = zero, .heads = 8});
  }
  rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4,
                  .recompute = topology::Recompute::SELECTIVE, .heads = 8});
  rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .sequence_parallel = true,
                  .recompute = topology::Recompute::FULL, .heads = 8});
  return rows;
}
INSTANTIATE_TEST_SUITE_P(Flagship, LayoutEquivalence, ::testing::ValuesIn(FlagshipRows()),
                         RowName);

// ---- The serial run itself, and what the table cannot express. ----

training::TrainConfig SerialConfig(int micro_batch_size, int micro_batches) {
  return EquivalenceConfig(
      LayoutRow{.micro_batch_size = micro_batch_size, .micro_batches = micro_batches}.ToLayout());
}

// The baseline is meaningful: it learns (the loss falls from about ln 61) and
// every parameter gets a finite, non-zero gradient.
TEST(SerialRun, Trains) {
  const TrainedRun& serial = SerialRun(SerialConfig(1, 4));
  ASSERT_EQ(serial.losses.size(), 20u);
  EXPECT_NEAR(serial.losses.front(), std::log(61.0), 0.1);
  EXPECT_LT(serial.losses.back(), serial.losses.front() - 0.05);
  // wte, wpe, 12 tensors per block, ln_f: the tied head adds nothing.
  EXPECT_EQ(serial.grads_after_step1.size(), 2 + 12 * 8 + 2u);
  for (const auto& [name, grad] : serial.grads_after_step1) {
    double sum = 0;
    for (float g : grad) sum += std::abs(g);
    EXPECT_TRUE(std::isfinite(sum) && sum > 0) << name;
  }
  EXPECT_TRUE(std::isfinite(serial.val_loss));
}

// Why the key bias is compared apart: its gradient is rounding noise, many
// orders of magnitude below the query and value biases' gradients.
TEST(SerialRun, KeyBiasGradientIsRoundingNoise) {
  const training::TrainConfig config = SerialConfig(1, 4);
  const int64_t hidden = config.model().hidden_size();
  const TensorsByName grads = SplitOffKeyBias(SerialRun(config).grads_after_step1, hidden);
  for (int layer = 0; layer < config.model().num_layers(); ++layer) {
    const std::string name = absl::StrCat("h.", layer, ".attn.c_attn.bias");
    const double key = MaxAbs(grads.at(name + kKeyBiasSuffix));
    const double query_value = MaxAbs(grads.at(name));
    EXPECT_GT(query_value, 1e-5) << name;
    EXPECT_LT(key, 1e-6 * query_value) << name;
  }
}

// Micro-batching is arithmetic only: 8 micro-batches of 1 sequence train what
// 1 micro-batch of 8 does (the serial twins of the table differ in this).
TEST(SerialRun, MicroBatchingDoesNotChangeTraining) {
  const training::TrainConfig config = SerialConfig(1, 8);
  const Differences worst = ExpectSameTraining(SerialRun(config), SerialRun(SerialConfig(8, 1)),
                                               config);
  std::printf("mbs1_m8 against mbs8_m1: loss %.3g, gradients %.3g, parameters %.3g\n", worst.loss,
              worst.gradients, worst.parameters);
}

// Mixed precision: each layout against the serial run of the SAME precision
// (16-bit parameters, activations and traffic; fp32 masters, moments and
// gradients), within EquivalenceTolerance (tests/common/layout_equivalence.h).
std::vector<LayoutRow> MixedPrecisionRows() {
  std::vector<LayoutRow> rows;
  for (training::Precision precision : {training::BF16, training::FP16}) {
    rows.push_back({.tp = 2, .micro_batch_size = 2, .micro_batches = 2, .precision = precision});
    rows.push_back({.dp = 2, .micro_batch_size = 4, .precision = precision});
    rows.push_back({.pp = 2, .micro_batch_size = 1, .micro_batches = 8, .precision = precision});
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .precision = precision});
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .sequence_parallel = true,
                    .precision = precision});
    // ZeRO 1 and 2: the fp32 masters sharded with the moments; the values'
    // post-step all-gather moves 16-bit values.
    rows.push_back({.dp = 2, .micro_batch_size = 4, .zero_stage = 1, .precision = precision});
    rows.push_back({.dp = 2, .micro_batch_size = 4, .zero_stage = 1, .cpu_offload = true,
                    .precision = precision});
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .grad_bucket_mb = 0.01,
                    .zero_stage = 2, .precision = precision});
    // ZeRO 3: 16-bit value shards, gathers and gathered layers; the fp32
    // masters are the optimizer's windows, rounded into the shards.
    rows.push_back({.dp = 2, .micro_batch_size = 4, .zero_stage = 3, .precision = precision});
    rows.push_back({.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4, .zero_stage = 3,
                    .precision = precision});
  }
  return rows;
}
INSTANTIATE_TEST_SUITE_P(MixedPrecision, LayoutEquivalence,
                         ::testing::ValuesIn(MixedPrecisionRows()), RowName);

}  // namespace
}  // namespace trident::testing
