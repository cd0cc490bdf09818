#ifndef TRIDENT_TESTS_COMMON_LAYOUT_EQUIVALENCE_H_
#define TRIDENT_TESTS_COMMON_LAYOUT_EQUIVALENCE_H_

// The one layout-equivalence harness (DESIGN.md rule 2): a layout trains the
// serial model. Given a layout, TrainLayout runs N steps of the trainer's own
// step (training::StepRunner: production vocabulary padding, schedule,
// executor, tied-embedding sync, data-parallel reduction, gradient norm,
// AdamW with clipping and weight decay) on the local backend, every replica on
// its rows of one global batch (training/synthetic_batch.h), and records:
//   - the loss of every step;
//   - every gradient after step 1, gathered over tp and pp (before the update);
//   - every parameter after step N, gathered likewise;
//   - the validation loss of a fixed held-out batch after step N (the
//     forward-only schedule).
// ExpectSameTraining compares two such runs: the layout's and the serial
// run's of the same global batch and micro-batch size (SerialTwin).
//
// Tolerances (fp32, CPU): per step |loss - serial| / serial; per tensor
// ||got - serial|| / ||serial|| (tests/common/serial_comparison.h: a serial
// tensor that is exactly 0 must stay exactly 0); NaN always fails. The only
// differences are the orders of floating-point sums (all-reduce of partial
// GEMMs, gradients accumulated over replicas), so 1e-5 is tight.

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/common/serial_comparison.h"
#include "topology/grid_communicators.h"
#include "topology/layout.pb.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/step_runner.h"
#include "training/train_config.pb.h"

namespace trident::testing {

// One row of a layout table, written with designated initialisers:
//   {.tp = 2, .pp = 2, .dp = 2, .micro_batches = 4}
// Later features (ZeRO, recomputation, compression, precision) add fields.
struct LayoutRow {
  int tp = 1;
  int pp = 1;
  int dp = 1;
  int micro_batch_size = 1;
  int micro_batches = 1;
  topology::PipelineSchedule schedule = topology::ONE_F_ONE_B;
  int virtual_stages = 1;
  bool sequence_parallel = false;
  std::vector<int> layers_per_stage;
  // Data-parallel gradient reduction (data_parallel/grad_buckets.h): started
  // during the backward or after it, in buckets of this many MiB (0.01 MiB
  // gives the harness's model several buckets; the production default 25
  // gives it one).
  bool overlap_grad_reduce = true;
  double grad_bucket_mb = 25;
  int zero_stage = 0;  // ZeRO: optimizer state (1), gradients (2), values (3) sharded over dp.
  bool cpu_offload = false;  // ZeRO-Offload: optimizer state and update on the host.
  // Activation recomputation (transformer/block.h); the serial twin keeps
  // every activation, so the row checks recomputation against none.
  topology::Recompute::Policy recompute = topology::Recompute::NONE;
  // How buckets are all-reduced over dp (core/comm/allreduce_algorithms.h):
  // ring and tree add in other orders than the native all-reduce, which the
  // tolerance covers like any other reduction order.
  topology::DpAllReduce::Algorithm dp_allreduce = topology::DpAllReduce::NATIVE;
  // The model's attention heads: 8 lets tp 8 split them (the flagship rows,
  // every factorisation of 8 ranks); hidden stays 32.
  int heads = 4;
  // Tokens per sequence (and the context length). Above 64 the attention runs
  // several query tiles, above 256 several key tiles with its online softmax.
  int seq_length = 16;
  // Mixed precision (training/train_config.proto): the row is compared with
  // the serial run of the same precision, within EquivalenceTolerance.
  training::Precision precision = training::FP32;
  // > 0: the parameter server (dp_sync=ps, staleness 0) with this many
  // server ranks beside the dp workers (tp = pp = 1). Its gradients after
  // step 1 are the workers' gradients summed over dp by the harness (the sum
  // the servers take; no worker holds it).
  int ps_servers = 0;

  topology::ParallelLayout ToLayout() const;
  // EquivalenceConfig of this row's layout and model.
  training::TrainConfig ToConfig(int steps = 20) const;
  // LayoutName, plus "_h8" when heads is not 4, "_t320" when seq_length is
  // not 16 and "_bf16"/"_fp16" for mixed precision.
  std::string Name() const;
};

// A readable, unique test name: "tp2_pp2_dp2_mbs1_m4_1f1b", with "_v2",
// "_sp", "_split3x5", "_nooverlap" (gradients reduced after the backward) and
// "_bucket0p01" (grad_bucket_mb other than 25), "_zero1"/"_zero2"/"_zero3" and
// "_offload", "_recompute_selective"/"_recompute_full", "_ring"/"_tree" (dp_allreduce),
// "_ps2" (dp_sync=ps with 2 servers)
// where they apply (only [A-Za-z0-9_], as gtest needs).
std::string LayoutName(const topology::ParallelLayout& layout);

// The harness's model and optimizer with `layout`: 8 layers (pp = 4 with
// v = 2 needs 8 chunks), 4 heads, hidden 32, vocabulary 61 (not a multiple of
// 128 or of tp: the padding is exercised), 16 tokens per sequence; AdamW with
// warm-up, cosine decay, weight decay 0.1 and clipping at 0.5 (active in the
// first steps: the initial gradient norm is about 1); epsilon 1e-6 (with
// 1e-8, Adam turns the rounding noise of an element whose gradient hovers at
// zero into full-size steps whose sign the last bits decide).
training::TrainConfig EquivalenceConfig(const topology::ParallelLayout& layout, int steps = 20);

// The relative tolerance of a layout against its serial twin, by precision
// and by whether tensors are split (tp > 1).
// - fp32: 1e-5 everywhere (only the order of fp32 sums differs).
// - 16-bit without tp: every rank computes whole rows as the serial model
//   does and gradients are summed in fp32, so what differs is the order of
//   fp32 sums before a value is rounded to 16 bits: a rare one-ulp flip.
// - 16-bit with tp: a row-parallel layer's ranks each round their partial
//   product to 16 bits and the all-reduce rounds their sum again (16-bit
//   traffic, as Megatron's bf16 tensor parallelism), where the serial model
//   rounds the whole sum once: every row-parallel output can be one ulp away
//   (bf16: 2^-8 = 0.4 %). Masters, moments and gradients stay fp32, so these
//   flips average out over a layer's elements: the loss (a mean over every
//   token) stays within 2e-4 and gradients within ~1 %. Parameters after 20
//   AdamW steps differ most in the small bias tensors of the row-parallel
//   layers (attn.c_proj.bias, mlp.c_proj.bias): their gradients are sums over
//   tokens that nearly cancel, and Adam's normalised update turns a slightly
//   different near-zero gradient into a full learning-rate step.
// Measured worst over the harness's 16-bit rows (2026-12-06), and the
// tolerance (the smallest round figure 1.5x or more above it):
//                     loss            gradients        parameters
//   bf16, tp = 1      2.7e-5 / 1e-4   5.7e-8 / 1e-5    5.6e-3 / 2e-2
//   bf16, tp > 1      1.5e-4 / 5e-4   1.3e-2 / 3e-2    7.9e-2 / 1.2e-1
//   fp16, tp = 1      4.3e-6 / 2e-5   5.3e-8 / 1e-5    6.6e-4 / 3e-3
//   fp16, tp > 1      1.3e-5 / 5e-5   1.6e-3 / 5e-3    4.3e-3 / 2e-2
// (The validation loss is held to the loss tolerance.)
struct Tolerances {
  double loss = 1e-5;  // and the validation loss
  double gradients = 1e-5;
  double parameters = 1e-5;
};
Tolerances EquivalenceTolerance(const training::TrainConfig& config);

// The serial layout (tp = pp = dp = 1) that trains the same global batch with
// the same micro-batch size: micro_batches x dp micro-batches.
topology::ParallelLayout SerialTwin(const topology::ParallelLayout& layout);

struct TrainedRun {
  std::vector<double> losses;
  TensorsByName grads_after_step1;
  TensorsByName params_after_last;
  double val_loss = 0;
  // Per pipeline stage (the rank at tp 0, dp 0): the peak activation stash
  // of the last training step (StageModel::peak_stash_bytes).
  std::vector<int64_t> peak_stash_bytes;
};

// What RunRanks hands each rank: its place in the grid, its communicators
// and its StepRunner (built from `config` as the trainer builds it).
struct RankRun {
  int rank = 0;
  const topology::ProcessGrid& grid;
  const topology::GridCommunicators& comms;
  const training::BatchGeometry& batch;
  training::StepRunner& runner;
};

// Runs `body` on every rank of `config`'s layout, ranks as threads of the
// local backend; the first failure is returned. Under dp_sync=ps the
// ps_servers server ranks run too (after the grid's), started by worker 0
// with its initial values for config.steps() clocks, and `body` runs on the
// workers only.
absl::Status RunRanks(const training::TrainConfig& config,
                      const std::function<absl::Status(RankRun&)>& body);

// Trains config.steps() steps of `config` as described above; a layout that
// breaks a rule of topology::ValidateLayout is refused with its message.
absl::StatusOr<TrainedRun> TrainLayout(const training::TrainConfig& config);

// What the lossy and asynchronous modes' "it trains" tests bound: a run's
// losses and their drop, the first loss minus the mean of the last five.
struct LossCurve {
  std::vector<double> losses;
  double drop = NAN;
};
double LossDrop(const std::vector<double>& losses);

// Trains `config` (TrainLayout); expects config.steps() finite losses (a
// gtest failure naming `name` otherwise, and an empty curve if it failed)
// and prints the drop under `name`.
LossCurve TrainLossCurve(const training::TrainConfig& config, const std::string& name);

// The serial twin's run of `config`, trained once per process and shared.
const TrainedRun& SerialRun(const training::TrainConfig& config);

struct Differences {
  double loss = 0;
  double gradients = 0;
  double parameters = 0;
  double val_loss = 0;
};

// Adds a gtest failure for every step, tensor or validation loss of `run`
// that differs from `serial` by `tolerance` or more (relative), and returns
// the worst differences.
Differences ExpectSameTraining(const TrainedRun& run, const TrainedRun& serial,
                               const training::TrainConfig& config, double tolerance = 1e-5);
// The same with a tolerance per quantity.
Differences ExpectSameTraining(const TrainedRun& run, const TrainedRun& serial,
                               const training::TrainConfig& config, const Tolerances& tolerances);

}  // namespace trident::testing

#endif  // TRIDENT_TESTS_COMMON_LAYOUT_EQUIVALENCE_H_
