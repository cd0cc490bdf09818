#ifndef TRIDENT_TRAINING_TRAIN_CONFIG_H_
#define TRIDENT_TRAINING_TRAIN_CONFIG_H_

// Reading, printing and checking a TrainConfig (training/train_config.proto).
//
// Parsing checks syntax and field names only (an unknown or misspelt field is
// an error with its file:line:column). ValidateTrainConfig checks the values,
// after the tool has applied its flag overrides, and returns the FIRST broken
// rule as INVALID_ARGUMENT naming the field path, its value and the rule, e.g.
//   model.num_heads=3 must divide model.hidden_size=128 (each attention head
//   gets hidden_size / num_heads dimensions)
//
// Rules, in the order they are checked:
//   model:     transformer::ValidateGptConfig (transformer/model_config.h):
//              sizes >= 1, ffn_hidden_size >= 0, num_heads divides
//              hidden_size, tied embeddings, init_std and epsilon > 0.
//   data:      tokenizer is "byte" or "gpt2"; model.vocab_size covers the
//              tokenizer's vocabulary (256 / 50257); 1 <= seq_length <=
//              model.context_length; train_path and val_path non-empty;
//              val_fraction in [0, 1).
//   schedule:  steps >= 1; eval_interval >= 0; eval_batches >= 1 when
//              eval_interval > 0; log_interval >= 1; checkpoint_interval >= 0.
//   optimizer: learning_rate finite and > 0; 0 <= min_learning_rate <=
//              learning_rate; 0 <= warmup_steps <= steps; decay_steps >= 0 and,
//              when set, >= warmup_steps; beta1, beta2 in [0, 1); epsilon > 0;
//              weight_decay >= 0; grad_clip >= 0 (0 = off); all finite.
//   precision: loss_scale only with precision FP16; its initial_scale and
//              min_scale finite and > 0, window >= 1, hysteresis >= 1, and
//              (dynamic) min_scale <= initial_scale.
//   layout:    topology::ValidateLayout for the world size the layout implies
//              (tensor x pipeline x data) and this model (ModelDimensionsFor);
//              its message is prefixed "layout: ". The trainer checks the
//              actual world size against the layout separately.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "topology/layout_validation.h"
#include "training/train_config.pb.h"
#include "transformer/model.pb.h"

namespace trident::training {

// Parses a textproto TrainConfig. Errors are INVALID_ARGUMENT reading
// "<source_name>:<line>:<column>: <parser message>" (1-based), pointing at the
// offending field or value name when the parser names one. A layout with
// global_batch_size and no num_micro_batches gets it derived
// (topology::DeriveMicroBatches; its error is prefixed "<source_name>: layout: ").
absl::StatusOr<TrainConfig> ParseTrainConfig(absl::string_view text,
                                             absl::string_view source_name = "<train config>");

// A config file's size limit: a config is a small text file, and the limit
// keeps a wrong path (a data file, /dev/zero) from filling the memory.
inline constexpr int64_t kMaxTrainConfigBytes = int64_t{1} << 20;  // 1 MiB

// Reads and parses the file at `path` (errors name the file and the rule). A
// missing or unreadable file is NOT_FOUND; a directory, any other non-regular
// file (a FIFO, /dev/zero), a file over kMaxTrainConfigBytes and a file that
// sets no field (empty, or only comments) are INVALID_ARGUMENT.
absl::StatusOr<TrainConfig> LoadTrainConfig(const std::string& path);

// The config as textproto, every field that is set (parses back to an equal
// message).
std::string TrainConfigToText(const TrainConfig& config);

// The rules listed at the top of this file.
absl::Status ValidateTrainConfig(const TrainConfig& config);

// The loss_scale rules of ValidateTrainConfig (the precision rule aside):
// initial_scale and min_scale finite and > 0, window >= 1, hysteresis >= 1,
// and (dynamic) min_scale <= initial_scale. Field names as in a config file.
absl::Status ValidateLossScaleConfig(const LossScaleConfig& config);

// The model sizes the layout rules need (topology does not know the GPT).
topology::ModelDimensions ModelDimensionsFor(const transformer::GptConfig& model,
                                             int64_t seq_length);

// The vocabulary size of a known tokenizer name ("byte" 256, "gpt2" 50257);
// INVALID_ARGUMENT listing the choices otherwise.
absl::StatusOr<int64_t> TokenizerVocabSize(absl::string_view tokenizer);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_TRAIN_CONFIG_H_
