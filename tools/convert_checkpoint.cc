// Offline checkpoint conversion (issue 14). Implemented: a format-3 checkpoint
// of any layout into one safetensors file with Hugging Face GPT-2 names and a
// config.json (Hugging Face's GPT-2 format) next to it:
//
//   bazel run //tools:convert_checkpoint -- --input=ckpt/step_00000100 \
//       --to_safetensors=export/model.safetensors
//
// The tensors are assembled from the checkpoint's manifest (training/reshard.h,
// every rank file verified) and written by the trainer's own exporter
// (training/export.h). Nothing is written when the input is refused, and
// neither output may exist already.

#include <filesystem>
#include <iostream>
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
#include "training/export.h"
#include "training/reshard.h"

ABSL_FLAG(std::string, input, "", "checkpoint directory (format version 3) to convert");
ABSL_FLAG(std::string, to_safetensors, "",
          "write the serial model here (Hugging Face GPT-2 names) and config.json next to it");

namespace trident {
namespace {

absl::Status Run() {
  const std::string input = io::ResolveUserPath(absl::GetFlag(FLAGS_input));
  const std::string output = io::ResolveUserPath(absl::GetFlag(FLAGS_to_safetensors));
  if (input.empty() || output.empty()) {
    return absl::InvalidArgumentError("give --input=DIR and --to_safetensors=FILE");
  }
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
