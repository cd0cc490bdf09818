#include "training/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "nlohmann/json.hpp"

namespace trident::training {

// ---------------------------------------------------------------------------
// JSON lines. Strings are encoded by nlohmann::json; numbers by to_chars, whose
// shortest round-trip form is what the JSONL readers already parse (nlohmann
// would print 3.0 as "3.0" and 6e-4 as "0.0006").

namespace {

// `value` as a quoted JSON string (UTF-8 kept verbatim, control characters
// escaped; invalid UTF-8 becomes U+FFFD instead of failing the line).
void AppendJsonString(absl::string_view value, std::string* out) {
  *out += nlohmann::json(std::string(value))
              .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string JsonNumber(double value) {
  // JSON has no NaN or infinity: they are written as null, explicitly.
  if (!std::isfinite(value)) return "null";
  char buffer[64];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  TRIDENT_CHECK(result.ec == std::errc()) << "to_chars of " << value;
  return std::string(buffer, result.ptr);
}

void JsonLine::AppendKey(absl::string_view key) {
  if (body_.size() > 1) body_ += ',';
  AppendJsonString(key, &body_);
  body_ += ':';
}

JsonLine& JsonLine::AddInt(absl::string_view key, int64_t value) {
  AppendKey(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonLine& JsonLine::AddNumber(absl::string_view key, double value) {
  AppendKey(key);
  body_ += JsonNumber(value);
  return *this;
}

JsonLine& JsonLine::AddString(absl::string_view key, absl::string_view value) {
  AppendKey(key);
  AppendJsonString(value, &body_);
  return *this;
}

JsonLine& JsonLine::AddBool(absl::string_view key, bool value) {
  AppendKey(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::AddNull(absl::string_view key) {
  AppendKey(key);
  body_ += "null";
  return *this;
}

JsonLine TrainMetricsLine(const StepReport& m) {
  JsonLine line;
  line.AddInt("step", m.step)
      .AddNumber("loss", m.loss)
      .AddNumber("lr", m.lr)
      // Absent (dp_sync=ps) and non-finite both read null.
      .AddNumber("grad_norm", m.grad_norm.value_or(std::nan("")))
      .AddNumber("tokens_per_s", m.tokens_per_s)
      .AddNumber("step_time_ms", m.step_time_ms);
  if (m.mfu.has_value()) {
    line.AddNumber("mfu", *m.mfu);
  } else {
    line.AddNull("mfu");
  }
  line.AddInt("tokens", m.tokens);
  line.AddNumber("model_tflops", m.model_tflops);
  if (m.cpu_time_ms.has_value()) line.AddNumber("cpu_time_ms", *m.cpu_time_ms);
  if (m.dp_bytes_sent.has_value()) line.AddInt("dp_bytes_sent", *m.dp_bytes_sent);
  if (m.topk_k.has_value()) line.AddInt("topk_k", *m.topk_k);
  if (m.loss_scale.has_value()) {
    line.AddNumber("loss_scale", *m.loss_scale).AddBool("skipped", m.skipped);
  }
  return line;
}

JsonLine MemoryMetricsLine(const MemoryMetrics& m) {
  JsonLine line;
  line.AddInt("rank", m.rank)
      .AddInt("param_bytes", m.param_bytes)
      .AddInt("grad_bytes", m.grad_bytes)
      .AddInt("optimizer_state_bytes", m.optimizer_state_bytes)
      .AddInt("activation_peak_bytes", m.activation_peak_bytes)
      .AddInt("comm_bytes", m.comm_bytes);
  return line;
}

JsonLine ValidationMetricsLine(const ValidationMetrics& m) {
  JsonLine line;
  line.AddInt("step", m.step).AddNumber("val_loss", m.val_loss);
  return line;
}

// ---------------------------------------------------------------------------
// The writer.

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Open(const std::string& path,
                                                                   Mode mode) {
  if (path.empty()) return absl::InvalidArgumentError("metrics file path is empty");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    if (error) {
      return absl::PermissionDeniedError(absl::StrCat("cannot create directory '",
                                                      parent.string(), "' for metrics file '",
                                                      path, "': ", error.message()));
    }
  }
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == Mode::kAppend ? O_APPEND : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    const int e = errno;
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open metrics file '", path, "' for writing: ", std::strerror(e)));
  }
  return std::unique_ptr<MetricsWriter>(new MetricsWriter(path, fd));
}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status MetricsWriter::Write(const JsonLine& line) {
  const std::string text = line.ToString() + "\n";
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + written, text.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      return absl::DataLossError(
          absl::StrCat("cannot write to metrics file '", path_, "': ", std::strerror(e)));
    }
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Progress lines.

namespace {

int DecimalDigits(int64_t n) {
  int digits = 1;
  for (n = n < 0 ? -n : n; n >= 10; n /= 10) ++digits;
  return digits;
}

// %.4f and friends print "nan"/"inf" themselves; keep that.
std::string Milliseconds(double ms) {
  if (!std::isfinite(ms) || ms >= 100) return absl::StrFormat("%.0f", ms);
  if (ms >= 10) return absl::StrFormat("%.1f", ms);
  return absl::StrFormat("%.2f", ms);
}

std::string StepField(int64_t step, int64_t total_steps) {
  return absl::StrFormat("step %*d/%d", DecimalDigits(total_steps), step, total_steps);
}

}  // namespace

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = static_cast<int64_t>(std::llround(seconds));
  return absl::StrFormat("%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60);
}

std::string FormatProgressLine(const StepReport& info) {
  const std::string gnorm =
      info.grad_norm.has_value() ? absl::StrFormat("%.3g", *info.grad_norm) : "n/a";
  std::string line = absl::StrCat(
      StepField(info.step, info.total_steps),
      absl::StrFormat(" | loss %.4f | lr %.2e | gnorm %s | %.2e tok/s | %.3g TFLOP/s",
                      info.loss, info.lr, gnorm, info.tokens_per_s, info.model_tflops));
  if (info.mfu.has_value()) absl::StrAppendFormat(&line, " | mfu %.1f%%", *info.mfu * 100.0);
  absl::StrAppend(&line, " | ", Milliseconds(info.step_time_ms), " ms/step | eta ",
                  info.eta_seconds.has_value() ? FormatDuration(*info.eta_seconds) : "?");
  if (!info.precision.empty()) absl::StrAppend(&line, " | ", info.precision);
  if (info.loss_scale.has_value()) {
    absl::StrAppendFormat(&line, " scale %g%s | skipped %d", *info.loss_scale,
                          info.skipped ? " (step skipped: inf/NaN gradient)" : "",
                          info.skipped_steps);
  }
  return line;
}

std::string FormatValidationLine(int64_t step, int64_t total_steps, double val_loss) {
  return absl::StrCat(StepField(step, total_steps), absl::StrFormat(" | val_loss %.4f", val_loss));
}

// ---------------------------------------------------------------------------
// Throughput.

ThroughputTracker::ThroughputTracker(double smoothing) : smoothing_(smoothing) {
  TRIDENT_CHECK(smoothing > 0.0 && smoothing <= 1.0)
      << "ThroughputTracker: smoothing " << smoothing << " must be in (0, 1]";
}

void ThroughputTracker::AddStep(double seconds, int64_t tokens) {
  TRIDENT_CHECK(std::isfinite(seconds) && seconds > 0.0)
      << "ThroughputTracker: step time " << seconds << " s";
  TRIDENT_CHECK_GE(tokens, 0) << "ThroughputTracker: tokens";
  if (steps_ == 0) {
    ema_seconds_ = seconds;
    ema_tokens_ = static_cast<double>(tokens);
  } else {
    ema_seconds_ += smoothing_ * (seconds - ema_seconds_);
    ema_tokens_ += smoothing_ * (static_cast<double>(tokens) - ema_tokens_);
  }
  ++steps_;
  total_tokens_ += tokens;
  total_seconds_ += seconds;
  last_seconds_ = seconds;
  last_tokens_ = tokens;
}

double ThroughputTracker::last_tokens_per_second() const {
  return steps_ == 0 ? 0.0 : static_cast<double>(last_tokens_) / last_seconds_;
}

double ThroughputTracker::smoothed_tokens_per_second() const {
  return steps_ == 0 ? 0.0 : ema_tokens_ / ema_seconds_;
}

std::optional<double> ThroughputTracker::EtaSeconds(int64_t remaining_steps) const {
  if (steps_ == 0) return std::nullopt;
  return static_cast<double>(remaining_steps < 0 ? 0 : remaining_steps) * ema_seconds_;
}

}  // namespace trident::training
