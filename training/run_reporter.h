#ifndef TRIDENT_TRAINING_RUN_REPORTER_H_
#define TRIDENT_TRAINING_RUN_REPORTER_H_

// Everything a training run tells its user, owned by one object: the header,
// one progress line per step (every log_interval steps), the validation
// lines, the metrics JSONL (training/metrics.h) and the closing summary. Each
// step becomes one StepReport that both the line and the JSONL render.
//
// Global rank 0 reports; every other rank holds a silent reporter (no log, no
// file), so the trainer's loop reads the same on every rank.

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "training/metrics.h"

namespace trident::training {

struct RunReporterOptions {
  // Progress lines go here; null for a silent reporter (no metrics file either).
  std::ostream* log = nullptr;
  std::string metrics_path;  // JSONL; empty for none
  bool resumed = false;      // a resumed run appends to its metrics file
  int64_t total_steps = 0;
  int log_interval = 1;          // a progress line every N steps, and the last
  int64_t tokens_per_step = 0;   // loss tokens of the global batch
  double flops_per_token = 0;    // model FLOPs (training/flops.h)
  double peak_flops = 0;         // the job's devices together; 0: MFU unknown
  std::string precision;         // "fp32", "bf16", "fp16": shown on every progress line
};

// FP16's loss scaler after a step (training/loss_scaler.h).
struct LossScaleReport {
  double scale = 0;           // the scale the step ran with
  bool skipped = false;       // skipped: a gradient was inf or NaN on some rank
  int64_t skipped_steps = 0;  // of the run so far
};

// What the run did, for the caller (and the closing summary).
struct RunTotals {
  std::vector<double> losses;                          // one per step run
  std::vector<std::pair<int64_t, double>> val_losses;  // (1-based step, loss)
  double seconds = 0;                                  // in training steps
  int64_t tokens = 0;                                  // trained on by this run
};

class RunReporter {
 public:
  // Opens the metrics file when there is one (errors name it).
  static absl::StatusOr<std::unique_ptr<RunReporter>> Create(RunReporterOptions options);

  // A free-form line of the header or of an event (checkpoint saved, ...).
  void Note(absl::string_view line);

  // The gradient sync figures of a step (StepReport's dp_bytes_sent, topk_k).
  struct GradientSyncFigures {
    std::optional<int64_t> dp_bytes_sent;
    std::optional<int64_t> topk_k;
  };

  // A finished step, 0-based `step`, that took `seconds` (> 0) and, when
  // known, `cpu_seconds` of this process's CPU time. `loss_scale` only with
  // fp16's loss scaler: then the JSONL line carries loss_scale and skipped,
  // and the progress line the scale and skip count.
  absl::Status Step(int64_t step, double seconds, double loss, double lr,
                    std::optional<double> grad_norm,
                    std::optional<double> cpu_seconds = std::nullopt,
                    const GradientSyncFigures& sync = {},
                    std::optional<LossScaleReport> loss_scale = std::nullopt);

  // Every rank's measured memory (indexed by rank), after the run's first
  // step: one JSONL line per rank and a header line for the largest rank,
  // next to `estimate_bytes` (training/memory_estimate.h).
  absl::Status Memory(const std::vector<MemoryMetrics>& ranks, int64_t estimate_bytes);

  // The validation loss after 1-based step `step`.
  absl::Status Validation(int64_t step, double val_loss);

  // Prints the closing summary: steps, time, mean tokens/s and MFU, the last
  // train and validation losses, and where the outputs are: the metrics file,
  // the last checkpoint and the export (empty: none).
  void Finish(absl::string_view checkpoint = "", absl::string_view export_path = "");

  const RunTotals& totals() const { return totals_; }

 private:
  explicit RunReporter(RunReporterOptions options) : options_(std::move(options)) {}
  std::optional<double> Mfu(double tokens_per_s) const;

  RunReporterOptions options_;
  std::unique_ptr<MetricsWriter> metrics_;
  ThroughputTracker throughput_;
  RunTotals totals_;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_RUN_REPORTER_H_
