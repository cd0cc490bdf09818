#ifndef TRIDENT_TRAINING_TRAINER_H_
#define TRIDENT_TRAINING_TRAINER_H_

// The training loop: builds the process grid and its communicators, the model
// stage, the optimizer and the data loader on every rank, and runs the steps.
//
// One step, per rank (a rank owns the model chunks of its pipeline stage,
// tensor-parallel over its tp group, and takes its slice of the global batch
// by its dp coordinate): the global batch of the step (the same for every
// layout, DESIGN.md rule 2) is sliced by dp rank and handed to
// training::StepRunner (step_runner.h), which runs the layout's pipeline
// schedule, syncs tied embeddings and data-parallel gradients, clips by the
// global norm and applies AdamW.
// Global rank 0 prints one progress line per step and writes the metrics JSONL.
//
// Layout features that are not implemented yet are refused with an
// UNIMPLEMENTED error naming the field; they are never silently ignored.

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct TrainOptions {
  TrainConfig config;
  std::string backend = "local";  // "local" (threads) or "mpi" (processes).
  std::string device = "cpu";     // "cpu" or "cuda".
  std::string metrics_out;        // JSONL file; empty for none.
  std::string save_dir;           // Checkpoint directory written at the end; empty for none.
  std::string resume_dir;         // Checkpoint to resume from; empty to start fresh.
  std::string export_path;        // Hugging Face GPT-2 safetensors written at the end; empty for none.
  // Stop after this step (1-based; 0: run all config.steps), as a job cut by a
  // time limit would; the learning-rate schedule still spans config.steps, and
  // the checkpoint (with save_dir) is written at the stop.
  int64_t stop_at_step = 0;
  std::ostream* log = nullptr;    // Progress lines (global rank 0); null for stdout.
};

struct TrainResult {
  int64_t first_step = 0;  // > 0 when resumed.
  std::vector<double> losses;                           // One per step run.
  std::vector<std::pair<int64_t, double>> val_losses;   // (step, loss).
  double tokens_per_second = 0;                         // Over the steps run.
};

// Runs the job described by `options` to completion.
absl::StatusOr<TrainResult> Train(const TrainOptions& options);

// The layout features this build can train (anything else is UNIMPLEMENTED,
// naming the field and value).
absl::Status CheckSupported(const TrainOptions& options);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_TRAINER_H_
