#include "training/run_reporter.h"

#include <ostream>

#include "absl/strings/str_format.h"
#include "core/status_macros.h"
#include "training/flops.h"

namespace trident::training {

absl::StatusOr<std::unique_ptr<RunReporter>> RunReporter::Create(RunReporterOptions options) {
  std::unique_ptr<RunReporter> reporter(new RunReporter(std::move(options)));
  const RunReporterOptions& o = reporter->options_;
  if (o.log != nullptr && !o.metrics_path.empty()) {
    ASSIGN_OR_RETURN(reporter->metrics_,
                     MetricsWriter::Open(o.metrics_path, o.resumed ? MetricsWriter::Mode::kAppend
                                                                   : MetricsWriter::Mode::kTruncate));
  }
  return reporter;
}

void RunReporter::Note(absl::string_view line) {
  if (options_.log != nullptr) *options_.log << line << std::endl;
}

std::optional<double> RunReporter::Mfu(double tokens_per_s) const {
  if (options_.peak_flops <= 0) return std::nullopt;
  return ModelFlopsUtilization(options_.flops_per_token, tokens_per_s, options_.peak_flops);
}

absl::Status RunReporter::Step(int64_t step, double seconds, double loss, double lr,
                               std::optional<double> grad_norm, std::optional<double> cpu_seconds,
                               const GradientSyncFigures& sync,
                               std::optional<LossScaleReport> loss_scale) {
  throughput_.AddStep(seconds, options_.tokens_per_step);
  totals_.losses.push_back(loss);
  totals_.seconds += seconds;
  totals_.tokens += options_.tokens_per_step;
  if (options_.log == nullptr) return absl::OkStatus();

  StepReport report;
  report.step = step + 1;
  report.total_steps = options_.total_steps;
  report.loss = loss;
  report.lr = lr;
  report.grad_norm = grad_norm;
  report.tokens_per_s = options_.tokens_per_step / seconds;
  report.step_time_ms = seconds * 1e3;
  report.mfu = Mfu(report.tokens_per_s);
  report.model_tflops = options_.flops_per_token * report.tokens_per_s / 1e12;
  report.tokens = (step + 1) * options_.tokens_per_step;
  report.eta_seconds = throughput_.EtaSeconds(options_.total_steps - step - 1);
  if (cpu_seconds.has_value()) report.cpu_time_ms = *cpu_seconds * 1e3;
  report.dp_bytes_sent = sync.dp_bytes_sent;
  report.topk_k = sync.topk_k;
  report.precision = options_.precision;
  if (loss_scale.has_value()) {
    report.loss_scale = loss_scale->scale;
    report.skipped = loss_scale->skipped;
    report.skipped_steps = loss_scale->skipped_steps;
  }
  if (metrics_ != nullptr) RETURN_IF_ERROR(metrics_->WriteTrain(report));
  if (report.step % options_.log_interval == 0 || report.step == options_.total_steps) {
    Note(FormatProgressLine(report));
  }
  return absl::OkStatus();
}

absl::Status RunReporter::Memory(const std::vector<MemoryMetrics>& ranks,
                                 int64_t estimate_bytes) {
  if (options_.log == nullptr || ranks.empty()) return absl::OkStatus();
  const auto total = [](const MemoryMetrics& m) {
    return m.param_bytes + m.grad_bytes + m.optimizer_state_bytes + m.activation_peak_bytes;
  };
  const MemoryMetrics* largest = &ranks[0];
  for (const MemoryMetrics& m : ranks) {
    if (total(m) > total(*largest)) largest = &m;
    if (metrics_ != nullptr) RETURN_IF_ERROR(metrics_->WriteMemory(m));
  }
  Note(absl::StrFormat(
      "memory after the first step, largest rank %d: %.1f MB (parameters %.1f, gradients %.1f, "
      "optimizer state %.1f, activation peak %.1f; measured; the estimate was %.1f)",
      largest->rank, total(*largest) / 1e6, largest->param_bytes / 1e6, largest->grad_bytes / 1e6,
      largest->optimizer_state_bytes / 1e6, largest->activation_peak_bytes / 1e6,
      estimate_bytes / 1e6));
  return absl::OkStatus();
}

absl::Status RunReporter::Validation(int64_t step, double val_loss) {
  totals_.val_losses.emplace_back(step, val_loss);
  if (options_.log == nullptr) return absl::OkStatus();
  Note(FormatValidationLine(step, options_.total_steps, val_loss));
  if (metrics_ != nullptr) RETURN_IF_ERROR(metrics_->WriteValidation({step, val_loss}));
  return absl::OkStatus();
}

void RunReporter::Finish(absl::string_view checkpoint, absl::string_view export_path) {
  if (options_.log == nullptr || totals_.losses.empty()) return;
  const double tokens_per_s = totals_.tokens / totals_.seconds;
  std::string line = absl::StrFormat("done: %d steps in %s, %.3g tokens/s",
                                     totals_.losses.size(), FormatDuration(totals_.seconds),
                                     tokens_per_s);
  if (std::optional<double> mfu = Mfu(tokens_per_s)) {
    absl::StrAppendFormat(&line, ", mfu %.1f%%", *mfu * 100);
  }
  absl::StrAppendFormat(&line, "; last train loss %.4f", totals_.losses.back());
  if (!totals_.val_losses.empty()) {
    absl::StrAppendFormat(&line, ", validation loss %.4f (step %d)",
                          totals_.val_losses.back().second, totals_.val_losses.back().first);
  }
  if (metrics_ != nullptr) absl::StrAppend(&line, "; metrics ", metrics_->path());
  if (!checkpoint.empty()) absl::StrAppend(&line, "; checkpoint ", checkpoint);
  if (!export_path.empty()) absl::StrAppend(&line, "; export ", export_path);
  Note(line);
}

}  // namespace trident::training
