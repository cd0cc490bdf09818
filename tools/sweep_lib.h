#ifndef TRIDENT_TOOLS_SWEEP_LIB_H_
#define TRIDENT_TOOLS_SWEEP_LIB_H_

// The layout sweep behind //tools:sweep: enumerates the layouts of a job on a
// world of N ranks at a fixed global batch, checks each with the trainer's own
// rules, predicts it with the planner (planning/planner.h) and, unless only
// predicting, trains each candidate for a few steps and measures it.
//
// The space (EnumerateLayouts), for the world size N and global batch B:
//   tp x pp x dp = N, every ordered factorisation;
//   (SweepSpace's limits, --max_tp, --max_pp, --max_dp,
//   --max_micro_batch_size and --schedules, narrow each dimension below;)
//   micro_batch_size: every divisor of B / dp (just 1 when dp does not divide
//     B: that candidate is then listed with DeriveMicroBatches' refusal);
//   schedule: with pp > 1, gpipe, 1f1b, zb-h1, and interleaved with each v
//     in 2..num_layers / pp (v that do not split the layers are listed with
//     ValidateLayout's message); with pp = 1 only 1f1b (one stage has no
//     pipeline: every schedule runs it identically);
//   sequence_parallel: off, and on when tp > 1;
//   zero_stage: the values of SweepSpace::zero_stages (the tool's default: the
//     config's own stage only; --zero_stages=0,1,2,3 sweeps them);
//   recompute: the values of SweepSpace::recompute (default: the config's own
//     policy; --recompute_policies=none,selective,full sweeps them);
//   gradient compression: the values of SweepSpace::compressions (default:
//     the config's; --gradient_compressions=none,bf16,topk,int8), named in
//     the candidate only when not none ("-cbf16").
// These three default to the config's value to keep the runnable space small
// (every value multiplies it); the rest of the layout (rank order, buckets,
// offload) is the config's. Every candidate is checked in the trainer's order:
// topology::DeriveMicroBatches, training::ValidateTrainConfig (which runs
// topology::ValidateLayout), training::CheckSupported; the first refusal is
// kept as the candidate's status and listed, never dropped.
//
// Outputs in SweepOptions::out_dir (rewritten after every layout, so an
// interrupted sweep keeps what it measured): results.csv (one row per
// layout: predicted and measured step, memory, replayed makespan and bubble,
// bytes and CPU time per step), results.md (ranked table; Spearman rank
// correlation and median relative error of the step time, the replayed
// makespan and the CPU time; the machine's load average), chart.svg (bars
// ranked by tokens/s, predicted next to measured, with the makespans;
// invalid, failed and over-budget layouts marked), best_layout.textproto (the best
// layout's TrainConfig with the base config's steps) and runs/<layout>.jsonl
// (each run's metrics; with the mpi backend also <layout>.textproto and
// <layout>.log). A sweep started again over the same out_dir skips the
// layouts its results.csv already holds (a row that was only predicted is run
// when the new sweep runs).

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "planning/hardware.pb.h"
#include "planning/planner.h"
#include "training/train_config.pb.h"

namespace trident::tools {

struct SweepSpace {
  int world_size = 1;
  int global_batch_size = 1;
  std::vector<int> zero_stages;                     // empty: the config's stage
  std::vector<topology::Recompute::Policy> recompute;  // empty: the config's policy
  // Gradient compression methods (empty: the config's). The trainer refuses
  // every method but NONE so far (training::CheckSupported, by name): when
  // running, those candidates are listed invalid with its message; --predict
  // plans them (fewer bytes on the dp wire).
  std::vector<topology::GradientCompression::Method> compressions;
  // Limits on the space (0 / empty: none): the largest tp, pp, dp and
  // micro-batch size enumerated, and the schedules (with pp > 1; pp = 1 runs
  // 1f1b whatever this says). Layouts outside them are not candidates at all
  // (unlike invalid ones, which are listed).
  int max_tp = 0, max_pp = 0, max_dp = 0, max_micro_batch_size = 0;
  std::vector<topology::PipelineSchedule> schedules;
  // True: every check training::Train makes (see above). False (RunSweep
  // sets it for --predict): only the layout's, DeriveMicroBatches and
  // ValidateLayout worded as ValidateTrainConfig words them ("layout: ..."),
  // so a job that cannot train here (no data files, thousands of GPUs) is
  // still planned.
  bool check_runnable = true;
};

struct Candidate {
  std::string name;  // e.g. tp2-pp2-dp2-mbs1-1f1b-z0-rnone, ...-interleaved-v2-sp-..., ...-cbf16
  training::TrainConfig config;  // num_micro_batches derived when it could be
  absl::Status status;           // the first rule it breaks; OK when it can train
};

// The candidates above, in a fixed order. Fails only on a bad space
// (world_size or global_batch_size < 1, a zero stage or policy out of range).
absl::StatusOr<std::vector<Candidate>> EnumerateLayouts(const training::TrainConfig& base,
                                                        const SweepSpace& space);

// One line of results.csv.
struct SweepRow {
  std::string layout;
  int tp = 0, pp = 0, dp = 0, micro_batch_size = 0, num_micro_batches = 0;
  std::string schedule;
  int virtual_stages = 1;
  bool sequence_parallel = false;
  int zero_stage = 0;
  std::string recompute;
  // ok (measured), predicted (--predict), not_run (outside --top_n),
  // invalid, failed, over_budget. A resumed sweep skips every row but
  // `predicted` ones when it runs (and every row when it predicts).
  std::string status;
  std::string reason;
  // NaN when unknown (an empty CSV field).
  double predicted_step_s;
  double predicted_tokens_per_s;
  double predicted_memory_bytes;  // the planner's largest rank
  double measured_step_s;
  double measured_tokens_per_s;
  double measured_peak_memory_bytes;  // max over ranks of param+grad+optimizer+activation peak
  // The layout's schedule replayed as if every rank had a device of its own:
  // by the planner with its F/B/W durations, and by training::ProfilePipeline
  // with the actions' measured durations (thread CPU time with one thread per
  // rank, so other processes on the machine do not inflate it). The makespan
  // (the step without dp reduction and optimizer) and the worst stage's
  // bubble fraction.
  double predicted_makespan_s;
  double measured_makespan_s;
  double predicted_bubble;
  double measured_bubble;
  // CPU core-seconds the job's ranks use per step: the planner's busy
  // core-seconds (hardware with cores_per_node) and the median of the
  // trainer's cpu_time_ms after the first step (local backend: every rank is
  // a thread of one process; other processes on the machine do not count).
  double predicted_cpu_s;
  double measured_cpu_s;
  // Communication payload of one step, all ranks together: the planner's
  // count and the trainer's (metrics comm_bytes, first step).
  double predicted_comm_bytes;
  double measured_comm_bytes;
  SweepRow();
};

struct SweepOptions {
  SweepSpace space;
  bool predict = false;
  planning::Hardware hardware;
  // What the planner models (runs here train in the config's own precision).
  planning::Precision precision = training::FP32;
  double memory_budget_bytes = 0;  // per rank; 0: no budget
  int steps = 3;
  int top_n = 0;                   // run only the best N predicted; 0: all
  int threads = 0;                 // compute threads per rank for the runs
  // "local": each run is training::Train in this process (rank threads);
  // "mpi": `mpirun -np N train_binary --backend=mpi ...` per run (rank
  // processes), its config written next to its metrics.
  std::string backend = "local";
  std::string train_binary;        // //tools:train, for the mpi backend
  std::string mpirun = "mpirun";
  std::string out_dir;
  std::ostream* log = nullptr;     // progress; null: stdout
};

struct SweepSummary {
  std::vector<SweepRow> rows;  // ranked (see RankRows)
  int evaluated = 0;           // layouts predicted or run by this call
  int skipped = 0;             // layouts already in results.csv
  int measured_pairs = 0;      // rows with both predictions and measurements
  double spearman = 0;         // NaN with fewer than 2 pairs
  double median_step_error = 0;  // |predicted - measured| / measured step time; NaN if none
  // The same two for the replayed makespan (robust to other load here).
  double makespan_spearman = 0;
  double median_makespan_error = 0;
  // And for the CPU core-seconds per step.
  double cpu_spearman = 0;
  double median_cpu_error = 0;
  std::string best_layout;     // empty when none can train
  // This machine's 1-minute load average (/proc/loadavg) before the first run
  // and after the last: other processes share the cores the runs measure.
  // NaN when not run or unreadable.
  double load_before = 0;
  double load_after = 0;
};

absl::StatusOr<SweepSummary> RunSweep(const training::TrainConfig& base,
                                      const SweepOptions& options);

// Ranked order: measured rows by measured tokens/s, then predicted and not_run rows by
// predicted tokens/s, then over_budget, failed, invalid.
void RankRows(std::vector<SweepRow>* rows);

// Spearman's rank correlation (average ranks for ties); NaN when n < 2 or a
// side is constant.
double SpearmanCorrelation(const std::vector<double>& x, const std::vector<double>& y);

// CSV (header + rows) and its inverse.
std::string RowsToCsv(const std::vector<SweepRow>& rows);
absl::StatusOr<std::vector<SweepRow>> RowsFromCsv(const std::string& text);

}  // namespace trident::tools

#endif  // TRIDENT_TOOLS_SWEEP_LIB_H_
