#include "training/export.h"

#include <algorithm>
#include <filesystem>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/io/file_util.h"
#include "core/io/json_parse.h"
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

namespace {

// GPT-2's tensors for `m`, in Hugging Face's names and shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> Gpt2Shapes(const transformer::GptConfig& m) {
  const int64_t h = m.hidden_size(), f = transformer::FfnHiddenSize(m);
  std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"wte.weight", {m.vocab_size(), h}}, {"wpe.weight", {m.context_length(), h}}};
  for (int i = 0; i < m.num_layers(); ++i) {
    const std::string l = absl::StrCat("h.", i, ".");
    for (auto& [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
             {"ln_1.weight", {h}}, {"ln_1.bias", {h}},
             {"attn.c_attn.weight", {h, 3 * h}}, {"attn.c_attn.bias", {3 * h}},
             {"attn.c_proj.weight", {h, h}}, {"attn.c_proj.bias", {h}},
             {"ln_2.weight", {h}}, {"ln_2.bias", {h}},
             {"mlp.c_fc.weight", {h, f}}, {"mlp.c_fc.bias", {f}},
             {"mlp.c_proj.weight", {f, h}}, {"mlp.c_proj.bias", {h}}}) {
      shapes.emplace_back(l + name, shape);
    }
  }
  shapes.push_back({"ln_f.weight", {h}});
  shapes.push_back({"ln_f.bias", {h}});
  return shapes;
}

}  // namespace

absl::StatusOr<Gpt2Directory> ReadGpt2Directory(const std::string& dir) {
  const std::string config_path = io::JoinPath(dir, "config.json");
  const std::string weights_path = io::JoinPath(dir, "model.safetensors");
  ASSIGN_OR_RETURN(const std::string text, io::ReadFileToString(config_path));
  absl::StatusOr<nlohmann::ordered_json> json = io::ParseJsonDocument(text);
  if (!json.ok() || !json->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": not a JSON object", json.ok() ? "" : absl::StrCat(" (", json.status().message(), ")")));
  }
  const auto field = [&](const char* key, bool required, int64_t fallback) -> absl::StatusOr<int64_t> {
    const auto it = json->find(key);
    if (it == json->end() || it->is_null()) {
      if (!required) return fallback;
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": field '", key, "' is missing"));
    }
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1 << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": field '", key, "' is ",
                                                     it->dump(), ", not a positive integer"));
    }
    return it->get<int64_t>();
  };
  if (const auto type = json->find("model_type");
      type != json->end() && (!type->is_string() || type->get<std::string>() != "gpt2")) {
    return absl::InvalidArgumentError(
        absl::StrCat(config_path, ": field 'model_type' is ", type->dump(), ", not \"gpt2\""));
  }
  Gpt2Directory out;
  transformer::GptConfig& m = out.model;
  ASSIGN_OR_RETURN(const int64_t n_layer, field("n_layer", true, 0));
  ASSIGN_OR_RETURN(const int64_t n_embd, field("n_embd", true, 0));
  ASSIGN_OR_RETURN(const int64_t n_head, field("n_head", true, 0));
  ASSIGN_OR_RETURN(const int64_t vocab, field("vocab_size", true, 0));
  ASSIGN_OR_RETURN(const int64_t n_positions, field("n_positions", true, 0));
  ASSIGN_OR_RETURN(const int64_t n_inner, field("n_inner", false, 4 * n_embd));
  m.set_num_layers(n_layer);
  m.set_hidden_size(n_embd);
  m.set_num_heads(n_head);
  m.set_vocab_size(vocab);
  m.set_context_length(n_positions);
  // 0 is GPT-2's default, 4 x n_embd: written so, as a config would.
  m.set_ffn_hidden_size(n_inner == 4 * n_embd ? 0 : n_inner);
  m.set_tied_embeddings(true);
  if (const auto eps = json->find("layer_norm_epsilon"); eps != json->end() && !eps->is_null()) {
    if (!eps->is_number() || eps->get<double>() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(config_path, ": field 'layer_norm_epsilon' is ",
                                                     eps->dump(), ", not a positive number"));
    }
    m.set_layer_norm_epsilon(eps->get<float>());
  }
  if (const absl::Status valid = transformer::ValidateGptConfig(m); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": ", valid.message()));
  }

  ASSIGN_OR_RETURN(checkpoint::SafetensorsContents contents, checkpoint::ReadSafetensors(weights_path));
  absl::flat_hash_map<std::string, const checkpoint::LoadedTensor*> found;
  const checkpoint::LoadedTensor* lm_head = nullptr;
  for (const checkpoint::LoadedTensor& t : contents.tensors.tensors()) {
    std::string name = t.name;
    if (absl::StartsWith(name, "transformer.")) name = name.substr(12);
    if (absl::EndsWith(name, ".attn.bias") || absl::EndsWith(name, ".attn.masked_bias")) continue;
    if (name == "lm_head.weight") {
      lm_head = &t;
      continue;
    }
    if (!found.emplace(name, &t).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(weights_path, ": tensor '", name, "' appears twice"));
    }
  }
  const std::string given = absl::StrCat("config.json (n_layer ", n_layer, ", n_embd ", n_embd,
                                         ", n_inner ", n_inner, ", vocab_size ", vocab,
                                         ", n_positions ", n_positions, ")");
  for (const auto& [name, shape] : Gpt2Shapes(m)) {
    const auto it = found.find(name);
    if (it == found.end()) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor '", name,
                                                     "' is missing (", given, " has it)"));
    }
    const checkpoint::LoadedTensor& t = *it->second;
    if (t.dtype != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensor '", t.name,
                                                     "' has dtype ", DTypeName(t.dtype),
                                                     ", expected float32"));
    }
    if (t.shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          weights_path, ": tensor '", t.name, "' has shape ", checkpoint::ShapeToString(t.shape),
          ", ", given, " gives ", checkpoint::ShapeToString(shape)));
    }
    checkpoint::LoadedTensor& copy = out.tensors.emplace_back(t);
    copy.name = name;
    found.erase(it);
  }
  if (!found.empty()) {
    std::vector<std::string> extra;
    for (const auto& [name, t] : found) extra.push_back(name);
    std::sort(extra.begin(), extra.end());
    return absl::InvalidArgumentError(absl::StrCat(weights_path, ": tensors that GPT-2 with ",
                                                   given, " does not have: ",
                                                   absl::StrJoin(extra, ", ")));
  }
  if (lm_head != nullptr && (lm_head->shape != out.tensors[0].shape ||
                             lm_head->bytes != out.tensors[0].bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        weights_path, ": tensor 'lm_head.weight' differs from 'wte.weight'; this model ties them"));
  }
  return out;
}

}  // namespace trident::training
