#ifndef TRIDENT_TRAINING_METRICS_H_
#define TRIDENT_TRAINING_METRICS_H_

// What the trainer reports: one JSON object per line in a metrics file
// (JSONL), one human-readable progress line per step, and the step-time
// tracker that feeds both (throughput and ETA).
//
// JSONL lines, in this key order (scripts and the layout sweep read them):
//   train:      {"step":12,"loss":3.4521..,"lr":0.0006,"grad_norm":0.87..,
//                "tokens_per_s":12345.6,"step_time_ms":85.1,"mfu":0.123,"tokens":12288,
//                "model_tflops":0.0123[,"cpu_time_ms":160.2][,"dp_bytes_sent":123456]
//                [,"topk_k":1234]}; cpu_time_ms (when known) is the CPU time this process
//                used during the step, all its threads: every rank's on the local backend,
//                rank 0's process alone under MPI; dp_bytes_sent only with dp > 1, topk_k
//                only with Top-K compression
//                and with fp16's loss scaler also ..,"loss_scale":65536,"skipped":false
//                (the scale the step ran with; whether it was skipped for an inf/NaN
//                gradient)
//   validation: {"step":50,"val_loss":2.98..}
//   memory:     {"rank":3,"param_bytes":..,"grad_bytes":..,"optimizer_state_bytes":..,
//                "activation_peak_bytes":..,"comm_bytes":..}, one per rank, measured
//                after the run's first step and written before that step's line;
//                comm_bytes is the payload (comm::CommStats) the rank issued on its
//                grid's communicators during that step
// Numbers are written in the shortest form that reads back to the same double
// (std::to_chars), so losses of two runs compare exactly, not to a printed
// precision. JSON has no NaN or infinity: a non-finite number is written as
// null (a loss that diverged reads as null, never as a made-up number).
// `mfu` is a fraction (0.123 = 12.3 %); null when unknown. `model_tflops` is
// the model FLOPs of the step (training/flops.h) over its time, all ranks
// together.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::training {

// Builds one JSON object, keys in insertion order. Keys must be distinct (the
// caller's responsibility: the keys are fixed names in code).
class JsonLine {
 public:
  JsonLine& AddInt(absl::string_view key, int64_t value);
  // Shortest round-trip form; null for NaN and +-Inf.
  JsonLine& AddNumber(absl::string_view key, double value);
  JsonLine& AddString(absl::string_view key, absl::string_view value);
  JsonLine& AddBool(absl::string_view key, bool value);
  JsonLine& AddNull(absl::string_view key);

  // "{...}", no line break.
  std::string ToString() const { return body_ + "}"; }

 private:
  void AppendKey(absl::string_view key);
  std::string body_ = "{";
};

// The shortest decimal text that parses back to exactly `value`
// ("0.1", "3", "1e-08", "-0"); "null" for NaN and +-Inf.
std::string JsonNumber(double value);

// One finished training step as reported: the JSONL line and the progress
// line are two renderings of this one record, so they never disagree. Every
// rate describes the step itself (not a moving average); only the ETA looks
// ahead, from the smoothed step time.
struct StepReport {
  int64_t step = 0;         // 1-based, as shown
  int64_t total_steps = 0;  // of the run (the progress line's denominator)
  double loss = 0;
  double lr = 0;
  // Before clipping; empty when this rank does not know it (dp_sync=ps: the
  // servers clip; JSON null, "gnorm n/a" on the progress line).
  std::optional<double> grad_norm = 0.0;
  double tokens_per_s = 0;
  double step_time_ms = 0;
  std::optional<double> mfu;  // fraction; null when no peak is known
  int64_t tokens = 0;         // tokens trained on so far, this step included
  double model_tflops = 0;    // achieved model TFLOP/s of the whole job
  std::optional<double> cpu_time_ms;  // this process's CPU time in the step
  std::optional<double> eta_seconds;
  // Data-parallel gradient sync of the reporting rank this step, when there
  // is a dp group: bytes it put on the wire of the dp communicator
  // (comm::RingEquivalentBytesSent), and with Top-K compression the K of
  // every bucket summed.
  std::optional<int64_t> dp_bytes_sent;
  std::optional<int64_t> topk_k;
  // "fp32", "bf16" or "fp16" (the progress line shows it; empty: not shown).
  std::string precision;
  // FP16's loss scaler: the step's scale, whether it was skipped, and the
  // run's skipped steps so far. Unset without a loss scaler.
  std::optional<double> loss_scale;
  bool skipped = false;
  int64_t skipped_steps = 0;
};

struct ValidationMetrics {
  int64_t step = 0;
  double val_loss = 0;
};

// The JSONL keys are those of the header comment; total_steps and the ETA are
// the progress line's alone.
JsonLine TrainMetricsLine(const StepReport& m);
JsonLine ValidationMetricsLine(const ValidationMetrics& m);

// One rank's memory, measured (training/step_runner.h's RankMemory, as plain
// numbers: metrics does not depend on the trainer).
struct MemoryMetrics {
  int rank = 0;
  int64_t param_bytes = 0;
  int64_t grad_bytes = 0;
  int64_t optimizer_state_bytes = 0;
  int64_t activation_peak_bytes = 0;
  int64_t comm_bytes = 0;  // payload issued during the first step
};

JsonLine MemoryMetricsLine(const MemoryMetrics& m);

// Appends lines to a JSONL file. Each line is handed to the kernel with one
// write as soon as it is written (no user-space buffering), so a crash or a
// `tail -f` sees every finished step.
class MetricsWriter {
 public:
  enum class Mode {
    kTruncate,  // a fresh file (a new run)
    kAppend,    // continue an existing file (a resumed run)
  };

  // Creates the parent directories when missing. Errors name the path and the
  // operation that failed.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Open(const std::string& path,
                                                             Mode mode = Mode::kTruncate);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Writes line.ToString() + "\n".
  absl::Status Write(const JsonLine& line);
  absl::Status WriteTrain(const StepReport& m) { return Write(TrainMetricsLine(m)); }
  absl::Status WriteValidation(const ValidationMetrics& m) {
    return Write(ValidationMetricsLine(m));
  }
  absl::Status WriteMemory(const MemoryMetrics& m) { return Write(MemoryMetricsLine(m)); }

  const std::string& path() const { return path_; }

 private:
  MetricsWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
};

// ---- The progress line. ----

// "step  12/200 | loss 3.4521 | lr 6.00e-04 | gnorm 0.873 | 1.23e+04 tok/s |
//  mfu 12.3% | 85.1 ms/step | eta 0:00:16" (one line). The step is right-aligned
// to the width of total_steps; the MFU is left out when unknown and the ETA
// shows "eta ?"; non-finite numbers print as "nan"/"inf".
std::string FormatProgressLine(const StepReport& info);

// "step  50/200 | val_loss 2.9876".
std::string FormatValidationLine(int64_t step, int64_t total_steps, double val_loss);

// "0:00:16", "12:03:07" (hours are not wrapped into days); "?" for a negative
// or non-finite duration. Rounds to the nearest second.
std::string FormatDuration(double seconds);

// ---- Timing. ----

// Wall-clock time since construction or the last Restart (steady clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void Restart() { start_ = std::chrono::steady_clock::now(); }
  double ElapsedSeconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Step times and token counts, smoothed by an exponential moving average
// (ema += smoothing * (x - ema), the first sample initialising it), so the
// progress line's throughput and ETA do not jump with every noisy step but
// follow a real change within ~1 / smoothing steps.
class ThroughputTracker {
 public:
  // smoothing in (0, 1]; 1 means no smoothing (checked).
  explicit ThroughputTracker(double smoothing = 0.1);

  // One finished step: its duration (> 0) and the tokens it processed
  // (checked: a non-positive duration is a timing bug).
  void AddStep(double seconds, int64_t tokens);

  int64_t steps() const { return steps_; }
  int64_t total_tokens() const { return total_tokens_; }
  double total_seconds() const { return total_seconds_; }
  // The last step alone (what the metrics file records); 0 before any step.
  double last_step_seconds() const { return last_seconds_; }
  double last_tokens_per_second() const;
  // Smoothed (what the progress line shows); 0 before any step.
  double smoothed_step_seconds() const { return ema_seconds_; }
  double smoothed_tokens_per_second() const;
  // remaining_steps x the smoothed step time; nullopt before any step.
  std::optional<double> EtaSeconds(int64_t remaining_steps) const;

 private:
  double smoothing_;
  int64_t steps_ = 0;
  int64_t total_tokens_ = 0;
  double total_seconds_ = 0;
  double last_seconds_ = 0;
  int64_t last_tokens_ = 0;
  double ema_seconds_ = 0;
  double ema_tokens_ = 0;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_METRICS_H_
