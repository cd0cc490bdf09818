// Offline checkpoint conversion (issue 14):
//
//   convert_checkpoint --input=DIR --to_safetensors=FILE
//       a format-3 checkpoint of any layout into one safetensors file with
//       Hugging Face GPT-2 names and Hugging Face's config.json next to it;
//   convert_checkpoint --input=DIR --output=DIR [layout flags] [--overwrite]
//       the checkpoint under another layout (same model): OUT holds the target
//       layout's rank files and manifest, and //tools:train --resume=OUT with
//       the same layout flags continues bit for bit as a resharded
//       --resume=DIR would.
//
// --to_safetensors assembles the tensors from the manifest
// (training/reshard.h's ReadSerialParameters) and writes them with the
// trainer's own exporter (training::WriteGpt2Export). --output runs the
// target layout's ranks (threads) through the trainer's conversion mode
// (TrainOptions::convert_to): each rank reads its windows with ReadWindows,
// as a resharded resume does, and the job writes them with the trainer's own
// checkpoint writer. Ranks run because the names and shapes of a rank's
// tensors (its tensor-parallel shards, pipeline stage, ZeRO windows of the
// gradient buckets) are defined by the rank's model and optimizer; computing
// them here would be a second definition to keep in step. Nothing is written
// when an input is refused, and an existing output is replaced only with
// --overwrite (a checkpoint directory) or never (a safetensors file).

#include <filesystem>
#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/io/file_util.h"
#include "core/io/user_path.h"
#include "core/status_macros.h"
#include "training/checkpoint/checkpoint.h"
#include "training/checkpoint/checkpoint_series.h"
#include "training/export.h"
#include "training/reshard.h"
#include "training/trainer.h"
#include "tools/config_flags.h"

ABSL_FLAG(std::string, input, "", "checkpoint directory (format version 3) to convert");
ABSL_FLAG(std::string, to_safetensors, "",
          "write the serial model here (Hugging Face GPT-2 names) and config.json next to it");
ABSL_FLAG(std::string, output, "",
          "write the checkpoint here under the layout the layout flags give (the input's layout "
          "with --tp, --pp, --dp, --micro_batches, ... applied)");
ABSL_FLAG(bool, overwrite, false, "--output may replace an existing checkpoint directory");

namespace trident {
namespace {

// --output: the layout of the input with the layout flags applied.
absl::Status ConvertLayout(const std::string& input, const std::string& output) {
  if (!tools::ConfigFileFromFlags().empty()) {
    return absl::InvalidArgumentError(
        "--config does not apply to --input/--output: the model, sequence length and seed are "
        "the checkpoint's; give the layout flags");
  }
  if (io::PathExists(output) && !absl::GetFlag(FLAGS_overwrite)) {
    return absl::AlreadyExistsError(
        absl::StrCat("--output=", output, " exists; refusing to replace it (--overwrite)"));
  }
  if (std::filesystem::weakly_canonical(input) == std::filesystem::weakly_canonical(output)) {
    return absl::InvalidArgumentError(absl::StrCat("--output=", output, " is the input"));
  }
  ASSIGN_OR_RETURN(const std::string source, checkpoint::ResolveResumeCheckpoint(input));
  ASSIGN_OR_RETURN(const checkpoint::CheckpointMeta meta, checkpoint::ReadCheckpointMeta(source));
  if (meta.format_version() < 3 || meta.parameters_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        source, "/meta.textproto: format_version ", meta.format_version(),
        " has no manifest (parameters); only version 3 checkpoints change layout"));
  }
  training::TrainOptions options;
  training::TrainConfig& config = options.config;
  *config.mutable_model() = meta.model();
  *config.mutable_layout() = meta.layout();
  const int source_pp = meta.layout().pipeline_parallel();
  RETURN_IF_ERROR(tools::ApplyLayoutFlags(config.mutable_layout()));
  if (config.layout().pipeline_parallel() != source_pp) {
    config.mutable_layout()->clear_layers_per_stage();  // the source's split
  }
  config.set_seed(static_cast<int64_t>(meta.seed()));
  config.mutable_data()->set_seq_length(meta.seq_length());
  // Not read by a conversion; the trainer's config checks want a name.
  config.mutable_data()->set_train_path(
      meta.has_data_set() ? meta.data_set().train_path() : std::string("(not read)"));
  config.set_steps(std::max<int64_t>(1, meta.step()));
  config.set_eval_interval(0);
  options.resume_dir = source;
  options.convert_to = output;
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  std::ostringstream log;
  options.log = &log;
  const absl::StatusOr<training::TrainResult> result = training::Train(options);
  if (!result.ok()) {
    std::cerr << log.str();
    return result.status();
  }
  std::cout << log.str() << "converted " << source << " (step " << meta.step() << ", "
            << meta.world_size() << " ranks, " << training::DescribeLayout(meta) << ") to "
            << output << "\n";
  return absl::OkStatus();
}

absl::Status Run() {
  const std::string input = io::ResolveUserPath(absl::GetFlag(FLAGS_input));
  const std::string to_safetensors = io::ResolveUserPath(absl::GetFlag(FLAGS_to_safetensors));
  const std::string to_checkpoint = io::ResolveUserPath(absl::GetFlag(FLAGS_output));
  if (input.empty() || to_safetensors.empty() == to_checkpoint.empty()) {
    return absl::InvalidArgumentError(
        "give --input=DIR and one of --to_safetensors=FILE, --output=DIR [layout flags]");
  }
  if (!to_checkpoint.empty()) return ConvertLayout(input, to_checkpoint);
  const std::string& output = to_safetensors;
  const std::string config_json = training::Gpt2ConfigJsonPath(output);
  for (const std::string& path : {output, config_json}) {
    if (io::PathExists(path)) {
      return absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to replace it"));
    }
  }
  ASSIGN_OR_RETURN(const checkpoint::CheckpointMeta meta, checkpoint::ReadCheckpointMeta(input));
  ASSIGN_OR_RETURN(const std::vector<checkpoint::LoadedTensor> tensors,
                   training::ReadSerialParameters(input, meta));
  // The input is good: now the output directory may be created.
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(output).parent_path(), error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create the directory of ", output,
                                                      ": ", error.message()));
  }
  std::vector<checkpoint::TensorBlob> blobs;
  for (const checkpoint::LoadedTensor& t : tensors) blobs.push_back(t.View());
  RETURN_IF_ERROR(training::WriteGpt2Export(output, blobs, meta.model()));
  std::cout << "converted " << input << " (step " << meta.step() << ", "
            << training::DescribeLayout(meta) << ") to " << output << " and " << config_json
            << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::Run();
  if (!status.ok()) {
    std::cerr << "convert_checkpoint: " << status << "\n";
    return 1;
  }
  return 0;
}
