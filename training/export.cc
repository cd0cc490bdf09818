#include "training/export.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "core/io/atomic_file.h"
#include "core/status_macros.h"
#include "tensor_parallel/gather.h"
#include "training/checkpoint/safetensors.h"
#include "transformer/model_config.h"

namespace trident::training {

absl::StatusOr<std::vector<NamedTensor>> GatherSerialTensors(const ExecContext& ctx,
                                                             const ParameterList& params,
                                                             const tp::TpGroup& tp,
                                                             int64_t vocab_size,
                                                             bool gradients) {
  std::vector<NamedTensor> out;
  out.reserve(params.size());
  for (const Parameter* p : params) {
    ASSIGN_OR_RETURN(Tensor full,
                     tp::GatherShards(ctx, gradients ? p->grad : p->value, p->layout, tp));
    if (p->name == "wte.weight" && full.dim(0) > vocab_size) {
      full = full.Slice(0, 0, vocab_size);  // Contiguous: a prefix of rows.
    }
    out.push_back(NamedTensor{p->name, full});
  }
  return out;
}

checkpoint::TensorBlob BlobOf(const std::string& name, const Tensor& tensor) {
  TRIDENT_CHECK(tensor.is_contiguous() && tensor.device().is_cpu())
      << "exporting " << name << ": " << tensor.DebugString();
  checkpoint::TensorBlob blob;
  blob.name = name;
  blob.dtype = tensor.dtype();
  blob.shape.assign(tensor.shape().begin(), tensor.shape().end());
  blob.bytes = absl::MakeConstSpan(static_cast<const std::byte*>(tensor.raw_data()), tensor.nbytes());
  return blob;
}

std::vector<std::pair<std::string, std::string>> Gpt2Metadata(
    const transformer::GptConfig& config) {
  return {
      {"n_layer", absl::StrCat(config.num_layers())},
      {"n_head", absl::StrCat(config.num_heads())},
      {"n_embd", absl::StrCat(config.hidden_size())},
      {"n_inner", absl::StrCat(transformer::FfnHiddenSize(config))},
      {"vocab_size", absl::StrCat(config.vocab_size())},
      {"n_positions", absl::StrCat(config.context_length())},
      {"layer_norm_epsilon", absl::StrFormat("%.9g", config.layer_norm_epsilon())},
  };
}

absl::Status WriteGpt2Safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                                  const transformer::GptConfig& config) {
  std::vector<checkpoint::TensorBlob> blobs;
  blobs.reserve(tensors.size());
  for (const NamedTensor& t : tensors) blobs.push_back(BlobOf(t.name, t.tensor));
  return WriteGpt2Safetensors(path, blobs, config);
}

absl::Status WriteGpt2Safetensors(const std::string& path,
                                  absl::Span<const checkpoint::TensorBlob> blobs,
                                  const transformer::GptConfig& config) {
  checkpoint::SafetensorsMetadata metadata;
  for (auto& [key, value] : Gpt2Metadata(config)) metadata[key] = value;
  return checkpoint::WriteSafetensors(path, blobs, metadata);
}

std::string Gpt2ConfigJson(const transformer::GptConfig& config) {
  std::string json =
      "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
      "  \"activation_function\": \"gelu_new\",\n";
  for (auto& [key, value] : Gpt2Metadata(config)) {
    absl::StrAppend(&json, "  \"", key, "\": ", value, ",\n");
  }
  absl::StrAppend(&json, "  \"n_ctx\": ", config.context_length(), "\n}\n");
  return json;
}

std::string Gpt2ConfigJsonPath(const std::string& safetensors_path) {
  return (std::filesystem::path(safetensors_path).parent_path() / "config.json").string();
}

absl::Status WriteGpt2Export(const std::string& path,
                             absl::Span<const checkpoint::TensorBlob> blobs,
                             const transformer::GptConfig& config) {
  RETURN_IF_ERROR(WriteGpt2Safetensors(path, blobs, config));
  return io::WriteFileAtomically(Gpt2ConfigJsonPath(path), Gpt2ConfigJson(config));
}

absl::Status WriteGpt2Export(const std::string& path, const std::vector<NamedTensor>& tensors,
                             const transformer::GptConfig& config) {
  std::vector<checkpoint::TensorBlob> blobs;
  blobs.reserve(tensors.size());
  for (const NamedTensor& t : tensors) blobs.push_back(BlobOf(t.name, t.tensor));
  return WriteGpt2Export(path, blobs, config);
}

}  // namespace trident::training
