#ifndef TRIDENT_TRAINING_TRAINER_H_
#define TRIDENT_TRAINING_TRAINER_H_

// The training loop. Train() launches the job's ranks (training/launch.h:
// threads, or this MPI process); each rank builds the process grid and its
// communicators, its StepRunner (model stage, AdamW, schedule) and the data
// loader, then runs, as picotron's train.py reads:
//
//   for step in [first, last):
//     train one step          (StepRunner::TrainStep on this replica's rows)
//     report it               (RunReporter: progress line + metrics JSONL;
//                              under dp_sync=ps with staleness S, S steps
//                              later: training/deferred_step_reductions.h)
//     maybe evaluate          (every eval_interval steps and at the end)
//     maybe save a checkpoint (every checkpoint_interval steps and at the end)
//   maybe export; print the summary
//
// The step's global batch is the same for every layout (DESIGN.md rule 2);
// BatchGeometry says which rows each replica takes. Global rank 0 reports.
//
// Layout features that are not implemented yet are refused with an
// UNIMPLEMENTED error naming the field; they are never silently ignored.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct TrainOptions {
  TrainConfig config;
  std::string backend = "local";  // "local" (threads) or "mpi" (processes).
  // "cpu" or "cuda": one GPU (GPU 0) for the serial layout, --backend=local,
  // in a binary linking //training/cuda:cuda_accelerator (CheckSupported).
  std::string device = "cpu";
  // Outputs ("{run}" in a path: a fresh run directory, training/run_files.h).
  // Every path is checked before the first step (training/run_files.h).
  std::string metrics_out;        // JSONL file; empty for none.
  // Save directory: a checkpoint per save (step_NNNNNNNN/, `latest` names the
  // newest) at the end and every config.checkpoint_interval steps; empty for none.
  std::string save_dir;
  std::string export_path;        // Hugging Face GPT-2 safetensors written at the end; empty for none.
  // Where a stop signal saves when save_dir is empty; empty: nowhere.
  std::string signal_save_dir;
  bool overwrite = false;         // Outputs may replace existing files.
  // Inputs besides the token files, protected from the outputs.
  std::string config_path;        // The --config file; empty for none.
  // A checkpoint, or a save directory (its `latest`), to resume from; empty
  // to start fresh.
  std::string resume_dir;
  // With resume_dir: a conversion, not a run (//tools:convert_checkpoint).
  // Each rank loads the checkpoint under this job's layout, reading its
  // windows as a resharded resume does (training/reshard.h), and the job
  // writes it at once as the checkpoint directory `convert_to`: this layout's
  // rank files and manifest, with the source's step, data position and data
  // set. No token file is read and no step is trained.
  std::string convert_to;
  // Resume even when the checkpoint was trained on other token files.
  bool allow_different_data = false;
  // Checkpoints kept in save_dir (the newest; older ones are removed).
  int keep_last = 1;
  // Stop after this step (1-based; 0: run all config.steps), as a job cut by a
  // time limit would; the learning-rate schedule still spans config.steps, and
  // the checkpoint (with save_dir) is written at the stop.
  int64_t stop_at_step = 0;
  std::ostream* log = nullptr;    // Progress lines (global rank 0); null for stdout.
  // The FLOP/s of all the devices the job runs on together, the denominator
  // of MFU, and how it was obtained (printed in the header). Measured or given
  // by the caller, once: 0 prints no MFU.
  // Or, when peak_flops is 0, one core's peak (training/cpu_peak.h): the job's
  // peak is then this times the cores the job computes on. With --device=cuda
  // and peak_flops 0: the GPU's datasheet peak (training/device_peak.h), or
  // no MFU for a GPU not in that table.
  double peak_flops = 0;
  double peak_flops_per_core = 0;
  std::string peak_source;
  // Compute threads per rank; 0: the cores this process may use (its CPU
  // affinity) divided among the ranks that share them.
  int threads = 0;
  // How long a rank waits for its peers in one operation before the job fails.
  absl::Duration comm_timeout = absl::Seconds(60);
  // Tests and benchmarks only (no flag sets it): called on each training
  // rank's thread after its 0-based `step` (under dp_sync=ps, once the
  // reductions due after that step completed), with its rank. It may sleep,
  // making that rank slow.
  std::function<void(int rank, int64_t step)> after_step_for_testing;
};

struct TrainResult {
  int64_t first_step = 0;  // > 0 when resumed.
  std::vector<double> losses;                           // One per step run.
  std::vector<std::pair<int64_t, double>> val_losses;   // (step, loss).
  double tokens_per_second = 0;                         // Over the steps run.
  std::string checkpoint;  // The last checkpoint written; empty for none.
  // The signal (SIGINT, SIGTERM, SIGHUP) that stopped the run early, after
  // saving `checkpoint`; 0 when it ran to its end.
  int stop_signal = 0;
};

// Runs the job described by `options` to completion.
absl::StatusOr<TrainResult> Train(const TrainOptions& options);

// The layout features this build can train (anything else is UNIMPLEMENTED,
// naming the field and value).
absl::Status CheckSupported(const TrainOptions& options);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_TRAINER_H_
