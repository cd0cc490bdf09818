// Offline checkpoint conversion (issue 14):
//
//   convert_checkpoint --input=DIR --to_safetensors=FILE
//       a format-3 checkpoint of any layout into one safetensors file with
//       Hugging Face GPT-2 names and Hugging Face's config.json next to it;
//   convert_checkpoint --input=DIR --output=DIR [layout flags] [--overwrite]
//       the checkpoint under another layout (same model): OUT holds the target
//       layout's rank files and manifest, and //tools:train --resume=OUT with
//       the same layout flags continues bit for bit as a resharded
//       --resume=DIR would;
//   convert_checkpoint --from_hf=DIR --output=DIR [--config=FILE] [layout flags]
//       a Hugging Face GPT-2 directory (model.safetensors, config.json) into a
//       checkpoint of the layout that --config and the layout flags give
//       (its seed and sequence length too), the model from config.json, with
//       fresh optimizer state (zero moments, step 0): fine-tuning from public
//       weights. The directory is checked whole first
//       (training::ReadGpt2Directory), written as a serial checkpoint in a
//       scratch directory (training::WriteFreshSerialCheckpoint) and
//       converted from there as --input/--output converts.
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
// them here would be a second definition to keep in step. State that belongs
// to the source's own ranks follows the resume's rules: the gradient
// compressors' state is carried only into the same layout (dropped with a
// logged line otherwise, training/compression_checkpoint.h), and a local SGD
// or gossip checkpoint converts only to its own layout (training/reshard.h,
// ResumeFromOwnRankFiles). Nothing is written
// when an input is refused, and an existing output is replaced only with
// --overwrite (a checkpoint directory) or never (a safetensors file).
// Errors name the file and the field.

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
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
#include "training/train_config.h"
#include "training/checkpoint/checkpoint_meta.h"
#include "topology/layout.pb.h"
#include "tools/config_flags.h"

ABSL_FLAG(std::string, input, "", "checkpoint directory (format version 3) to convert");
ABSL_FLAG(std::string, to_safetensors, "",
          "write the serial model here (Hugging Face GPT-2 names) and config.json next to it");
ABSL_FLAG(std::string, output, "",
          "write the checkpoint here under the layout the layout flags give (the input's layout "
          "with --tp, --pp, --dp, --micro_batches, ... applied)");
ABSL_FLAG(std::string, from_hf, "",
          "a Hugging Face GPT-2 directory (model.safetensors, config.json) to write as the "
          "checkpoint --output under the layout of --config and the layout flags, with fresh "
          "optimizer state");
ABSL_FLAG(bool, overwrite, false, "--output may replace an existing checkpoint directory");

namespace trident {
namespace {

absl::Status RunConversion(training::TrainOptions options, const std::string& output);
absl::Status RefuseExistingOutput(const std::string& output);

// --output: the layout of the input with the layout flags applied.
absl::Status ConvertLayout(const std::string& input, const std::string& output) {
  if (!tools::ConfigFileFromFlags().empty() || tools::SeedFlagGiven()) {
    return absl::InvalidArgumentError(
        "--config and --seed do not apply to --input/--output: the model, sequence length and seed are "
        "the checkpoint's; give the layout flags");
  }
  RETURN_IF_ERROR(RefuseExistingOutput(output));
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
  RETURN_IF_ERROR(RunConversion(options, output));
  std::cout << "converted " << source << " (step " << meta.step() << ", "
            << meta.world_size() << " ranks, " << training::DescribeLayout(meta) << ") to "
            << output << "\n";
  return absl::OkStatus();
}

// The checkpoint `output` from `options` (resume_dir: a checkpoint to load
// under options.config's layout): the trainer's conversion mode.
absl::Status RunConversion(training::TrainOptions options, const std::string& output) {
  options.convert_to = output;
  options.overwrite = absl::GetFlag(FLAGS_overwrite);
  std::ostringstream log;
  options.log = &log;
  const absl::StatusOr<training::TrainResult> result = training::Train(options);
  if (!result.ok()) {
    std::cerr << log.str();
    return result.status();
  }
  std::cout << log.str();
  return absl::OkStatus();
}

absl::Status RefuseExistingOutput(const std::string& output) {
  if (io::PathExists(output) && !absl::GetFlag(FLAGS_overwrite)) {
    return absl::AlreadyExistsError(
        absl::StrCat("--output=", output, " exists; refusing to replace it (--overwrite)"));
  }
  return absl::OkStatus();
}

// --from_hf: the Hugging Face directory checked whole, written as a serial
// checkpoint with fresh optimizer state in a scratch directory, then
// converted to the target layout like any checkpoint.
absl::Status ConvertFromHf(const std::string& hf_dir, const std::string& output) {
  RETURN_IF_ERROR(RefuseExistingOutput(output));
  ASSIGN_OR_RETURN(training::Gpt2Directory hf, training::ReadGpt2Directory(hf_dir));
  training::TrainOptions options;
  ASSIGN_OR_RETURN(options.config, tools::TrainConfigFromFlags());
  training::TrainConfig& config = options.config;
  // Keep what the config sets beyond config.json (initialisation scale).
  const float init_std = config.model().init_std();
  *config.mutable_model() = hf.model;
  config.mutable_model()->set_init_std(init_std);
  config.set_eval_interval(0);
  RETURN_IF_ERROR(training::ValidateTrainConfig(config));
  // The serial layout with the same global batch.
  checkpoint::DataPosition position;
  position.set_seed(static_cast<uint64_t>(config.seed()));
  position.set_step(0);
  training::TrainConfig serial = config;
  topology::ParallelLayout& layout = *serial.mutable_layout();
  layout.set_num_micro_batches(layout.num_micro_batches() * layout.data_parallel());
  layout.set_tensor_parallel(1);
  layout.set_pipeline_parallel(1);
  layout.set_data_parallel(1);
  layout.set_virtual_pipeline_stages(1);
  layout.clear_layers_per_stage();
  layout.set_zero_stage(0);
  const checkpoint::CheckpointMeta meta = checkpoint::MakeCheckpointMeta(serial, 1, 0, position);
  char scratch_template[] = "/tmp/convert_checkpoint_XXXXXX";
  if (mkdtemp(scratch_template) == nullptr) {
    return absl::InternalError("cannot create a scratch directory in /tmp");
  }
  const std::string scratch = scratch_template;
  const std::string serial_dir = scratch + "/serial";
  absl::Status status = training::WriteFreshSerialCheckpoint(serial_dir, meta, hf.tensors);
  if (status.ok()) {
    options.resume_dir = serial_dir;
    status = RunConversion(options, output);
  }
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
  RETURN_IF_ERROR(status);
  std::cout << "converted " << hf_dir << " (Hugging Face GPT-2: " << hf.model.num_layers()
            << " layers, hidden " << hf.model.hidden_size() << ", " << hf.model.num_heads()
            << " heads, vocabulary " << hf.model.vocab_size() << ") to " << output
            << " (step 0, fresh optimizer state)\n";
  return absl::OkStatus();
}

absl::Status Run() {
  if (const std::string hf = io::ResolveUserPath(absl::GetFlag(FLAGS_from_hf)); !hf.empty()) {
    const std::string output = io::ResolveUserPath(absl::GetFlag(FLAGS_output));
    if (output.empty() || !absl::GetFlag(FLAGS_input).empty() ||
        !absl::GetFlag(FLAGS_to_safetensors).empty()) {
      return absl::InvalidArgumentError("--from_hf=DIR takes --output=DIR (and no --input, --to_safetensors)");
    }
    return ConvertFromHf(hf, output);
  }
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
