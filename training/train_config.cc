#include "training/train_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <system_error>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/io/text_proto.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "training/precision.h"
#include "transformer/model_config.h"

namespace trident::training {
namespace {

// ---------------------------------------------------------------------------
// Validation helpers: each returns OK or the message of the rule it checks.

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status AtLeast(absl::string_view field, int64_t value, int64_t minimum,
                     absl::string_view why = "") {
  if (value >= minimum) return absl::OkStatus();
  return Invalid(absl::StrCat(field, "=", value, " must be >= ", minimum,
                              why.empty() ? "" : absl::StrCat(" (", why, ")")));
}

absl::Status FiniteAndPositive(absl::string_view field, double value) {
  if (std::isfinite(value) && value > 0) return absl::OkStatus();
  return Invalid(absl::StrCat(field, "=", value, " must be a finite number > 0"));
}

absl::Status FiniteAndNonNegative(absl::string_view field, double value,
                                  absl::string_view zero_means = "") {
  if (std::isfinite(value) && value >= 0) return absl::OkStatus();
  return Invalid(absl::StrCat(field, "=", value, " must be a finite number >= 0",
                              zero_means.empty() ? "" : absl::StrCat(" (", zero_means, ")")));
}

absl::Status InUnitInterval(absl::string_view field, double value) {
  if (value >= 0.0 && value < 1.0) return absl::OkStatus();
  return Invalid(absl::StrCat(field, "=", value, " must be in [0, 1)"));
}

absl::Status ValidateData(const DataConfig& data, const transformer::GptConfig& model) {
  ASSIGN_OR_RETURN(const int64_t tokenizer_vocab, TokenizerVocabSize(data.tokenizer()));
  if (model.vocab_size() < tokenizer_vocab) {
    return Invalid(absl::StrCat("model.vocab_size=", model.vocab_size(),
                                " is smaller than the vocabulary of data.tokenizer=\"",
                                data.tokenizer(), "\" (", tokenizer_vocab,
                                " tokens); it must be >= ", tokenizer_vocab));
  }
  RETURN_IF_ERROR(AtLeast("data.seq_length", data.seq_length(), 1));
  if (data.seq_length() > model.context_length()) {
    return Invalid(absl::StrCat("data.seq_length=", data.seq_length(),
                                " must be <= model.context_length=", model.context_length(),
                                " (the position embedding has context_length rows)"));
  }
  if (data.train_path().empty()) return Invalid("data.train_path must not be empty");
  if (data.val_path().empty()) return Invalid("data.val_path must not be empty");
  return InUnitInterval("data.val_fraction", data.val_fraction());
}

absl::Status ValidateSchedule(const TrainConfig& config) {
  RETURN_IF_ERROR(AtLeast("steps", config.steps(), 1));
  RETURN_IF_ERROR(AtLeast("eval_interval", config.eval_interval(), 0, "0 turns validation off"));
  if (config.eval_interval() > 0) {
    RETURN_IF_ERROR(AtLeast(
        "eval_batches", config.eval_batches(), 1,
        absl::StrCat("validation runs every eval_interval=", config.eval_interval(), " steps")));
  }
  RETURN_IF_ERROR(AtLeast("log_interval", config.log_interval(), 1));
  return AtLeast("checkpoint_interval", config.checkpoint_interval(), 0,
                 "0 saves only at the end");
}

absl::Status ValidateOptimizer(const OptimizerConfig& opt) {
  RETURN_IF_ERROR(FiniteAndPositive("optimizer.learning_rate", opt.learning_rate()));
  RETURN_IF_ERROR(FiniteAndNonNegative("optimizer.min_learning_rate", opt.min_learning_rate()));
  if (opt.min_learning_rate() > opt.learning_rate()) {
    return Invalid(absl::StrCat("optimizer.min_learning_rate=", opt.min_learning_rate(),
                                " must be <= optimizer.learning_rate=", opt.learning_rate(),
                                " (the schedule decays from the peak down to the minimum)"));
  }
  RETURN_IF_ERROR(AtLeast("optimizer.warmup_steps", opt.warmup_steps(), 0));
  // A warm-up longer than the run is allowed: a short trial run simply never
  // reaches the peak learning rate.
  RETURN_IF_ERROR(AtLeast("optimizer.decay_steps", opt.decay_steps(), 0, "0 means the total steps"));
  if (opt.decay_steps() > 0 && opt.decay_steps() < opt.warmup_steps()) {
    return Invalid(absl::StrCat("optimizer.decay_steps=", opt.decay_steps(),
                                " must be >= optimizer.warmup_steps=", opt.warmup_steps(),
                                " (the decay starts where warm-up ends), or 0 for the total "
                                "steps"));
  }
  RETURN_IF_ERROR(InUnitInterval("optimizer.beta1", opt.beta1()));
  RETURN_IF_ERROR(InUnitInterval("optimizer.beta2", opt.beta2()));
  RETURN_IF_ERROR(FiniteAndPositive("optimizer.epsilon", opt.epsilon()));
  RETURN_IF_ERROR(FiniteAndNonNegative("optimizer.weight_decay", opt.weight_decay()));
  return FiniteAndNonNegative("optimizer.grad_clip", opt.grad_clip(), "0 turns clipping off");
}

absl::Status ValidatePrecision(const TrainConfig& config) {
  if (config.precision() == FP16 && config.layout().dp_sync() == topology::DpSync::PS) {
    return Invalid(
        "precision=fp16 does not combine with layout.dp_sync=ps: a step the loss scaler skips "
        "would have to be skipped by every worker and server alike (use fp32 or bf16; under "
        "bf16 the servers update fp32 values, which the workers round)");
  }
  if (!config.has_loss_scale()) return absl::OkStatus();
  if (config.precision() != FP16) {
    return Invalid(absl::StrCat(
        "loss_scale is set but precision=", PrecisionName(config.precision()),
        ": a loss scaler applies to fp16 only (fp32 and bf16 have fp32's exponent range, so "
        "small gradients do not underflow)"));
  }
  return ValidateLossScaleConfig(config.loss_scale());
}

}  // namespace

absl::Status ValidateLossScaleConfig(const LossScaleConfig& scale) {
  RETURN_IF_ERROR(FiniteAndPositive("loss_scale.initial_scale", scale.initial_scale()));
  RETURN_IF_ERROR(AtLeast("loss_scale.window", scale.window(), 1,
                          "clean steps before a dynamic scale doubles"));
  RETURN_IF_ERROR(AtLeast("loss_scale.hysteresis", scale.hysteresis(), 1,
                          "overflowing steps before the scale halves"));
  RETURN_IF_ERROR(FiniteAndPositive("loss_scale.min_scale", scale.min_scale()));
  if (scale.dynamic() && scale.min_scale() > scale.initial_scale()) {
    return Invalid(absl::StrCat("loss_scale.min_scale=", scale.min_scale(),
                                " must be <= loss_scale.initial_scale=", scale.initial_scale()));
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateLayoutForModel(const TrainConfig& config) {
  const topology::ParallelLayout& layout = config.layout();
  // The world size the grid implies. Non-positive factors are reported by
  // ValidateLayout's first rule; pass a world size that does not hide them.
  int64_t world = 1;
  for (int64_t factor : {int64_t{layout.tensor_parallel()}, int64_t{layout.pipeline_parallel()},
                         int64_t{layout.data_parallel()}}) {
    if (factor >= 1) world *= factor;
    if (world > std::numeric_limits<int>::max()) {
      return Invalid(absl::StrCat(
          "layout: tensor_parallel x pipeline_parallel x data_parallel = ",
          layout.tensor_parallel(), " x ", layout.pipeline_parallel(), " x ",
          layout.data_parallel(), " exceeds the largest world size ",
          std::numeric_limits<int>::max()));
    }
  }
  absl::Status status = topology::ValidateLayout(
      layout, static_cast<int>(world), ModelDimensionsFor(config.model(), config.data().seq_length()));
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("layout: ", status.message()));
}

}  // namespace

absl::StatusOr<TrainConfig> ParseTrainConfig(absl::string_view text,
                                             absl::string_view source_name) {
  TrainConfig config;
  RETURN_IF_ERROR(io::ParseTextProto(text, source_name, &config));
  // A config that states a global batch gets its micro-batch count now, so
  // every reader sees a complete layout (tools re-derive after their flags).
  if (absl::Status derived = topology::DeriveMicroBatches(config.mutable_layout()); !derived.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": layout: ", derived.message()));
  }
  return config;
}

absl::StatusOr<TrainConfig> LoadTrainConfig(const std::string& path) {
  // O_NONBLOCK: a FIFO must not block the open (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open train config ", path, ": ", std::strerror(errno)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot stat train config ", path, ": ", std::strerror(errno)));
  }
  if (S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("train config ", path, " is a directory, not a textproto file"));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train config ", path, " is not a regular file (a device, FIFO or socket); a config is "
        "a textproto file"));
  }
  const auto too_large = [&path](int64_t bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train config ", path, " has ", bytes, " bytes or more, over the limit of ",
        kMaxTrainConfigBytes, " (1 MiB) for a config: is it the right file?"));
  };
  if (info.st_size > kMaxTrainConfigBytes) return too_large(info.st_size);
  // Read to the end, not st_size bytes: /proc files report 0 and a file may
  // grow; the limit holds either way.
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::NotFoundError(
          absl::StrCat("cannot read train config ", path, ": ", std::strerror(errno)));
    }
    if (got == 0) break;
    text.append(buffer, static_cast<size_t>(got));
    if (static_cast<int64_t>(text.size()) > kMaxTrainConfigBytes) {
      return too_large(static_cast<int64_t>(text.size()));
    }
  }
  // Empty: every line blank or a comment (a textproto string cannot span lines).
  bool sets_a_field = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') sets_a_field = true;
  }
  if (!sets_a_field) {
    return absl::InvalidArgumentError(absl::StrCat(
        "train config ", path, " is empty: it sets no field. Fields a config leaves out take "
        "the defaults of training/train_config.proto, not the embedded default job's; leave out "
        "--config to train the embedded default"));
  }
  return ParseTrainConfig(text, path);
}

std::string TrainConfigToText(const TrainConfig& config) {
  return io::PrintTextProto(config);
}

absl::StatusOr<int64_t> TokenizerVocabSize(absl::string_view tokenizer) {
  if (tokenizer == "byte") return 256;
  if (tokenizer == "gpt2") return 50257;
  return absl::InvalidArgumentError(absl::StrCat(
      "data.tokenizer=\"", tokenizer, "\" is not a known tokenizer (choose \"byte\" or \"gpt2\")"));
}

absl::Status ValidateTrainConfig(const TrainConfig& config) {
  RETURN_IF_ERROR(transformer::ValidateGptConfig(config.model()));
  RETURN_IF_ERROR(ValidateData(config.data(), config.model()));
  RETURN_IF_ERROR(ValidateSchedule(config));
  RETURN_IF_ERROR(ValidateOptimizer(config.optimizer()));
  RETURN_IF_ERROR(ValidatePrecision(config));
  return ValidateLayoutForModel(config);
}

topology::ModelDimensions ModelDimensionsFor(const transformer::GptConfig& model,
                                             int64_t seq_length) {
  topology::ModelDimensions dims;
  dims.num_layers = model.num_layers();
  dims.num_heads = model.num_heads();
  dims.hidden_size = model.hidden_size();
  dims.ffn_hidden_size = transformer::FfnHiddenSize(model);
  dims.vocab_size = model.vocab_size();
  dims.seq_length = seq_length;
  return dims;
}

}  // namespace trident::training
