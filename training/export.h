#ifndef TRIDENT_TRAINING_EXPORT_H_
#define TRIDENT_TRAINING_EXPORT_H_

// Export of the model in the serial layout: tensor-parallel shards gathered,
// vocabulary padding trimmed, written as safetensors with Hugging Face GPT-2
// tensor names ("wte.weight", "h.0.attn.c_attn.weight", ...; Conv1D weights
// are [in, out], as in HF's GPT2Model), so PyTorch loads it directly.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"
#include "training/checkpoint/tensor_blob.h"
#include "transformer/model.pb.h"

namespace trident::training {

struct NamedTensor {
  std::string name;
  Tensor tensor;  // Contiguous, on the CPU.
};

// The serial model's value (or gradient, with `gradients`) of every parameter
// in `params`, gathered over the tensor-parallel group (collective: every tp
// member calls it) with the token embedding cut to `vocab_size` rows.
absl::StatusOr<std::vector<NamedTensor>> GatherSerialTensors(const ExecContext& ctx,
                                                             const ParameterList& params,
                                                             const tp::TpGroup& tp,
                                                             int64_t vocab_size,
                                                             bool gradients = false);

// A view of a contiguous CPU tensor's bytes for the checkpoint writers.
checkpoint::TensorBlob BlobOf(const std::string& name, const Tensor& tensor);

// GPT-2's configuration keys (n_layer, n_head, n_embd, n_inner, vocab_size,
// n_positions, layer_norm_epsilon) for a safetensors __metadata__ block.
std::vector<std::pair<std::string, std::string>> Gpt2Metadata(const transformer::GptConfig& config);

// Writes `tensors` (whole model, serial layout) to `path` atomically.
absl::Status WriteGpt2Safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                                  const transformer::GptConfig& config);
// The same from byte views: the one writer behind the trainer's export and
// //tools:convert_checkpoint.
absl::Status WriteGpt2Safetensors(const std::string& path,
                                  absl::Span<const checkpoint::TensorBlob> blobs,
                                  const transformer::GptConfig& config);

// Hugging Face's GPT-2 config.json for `config` (model_type "gpt2",
// GPT2LMHeadModel, the keys of Gpt2Metadata as numbers, tanh GELU).
std::string Gpt2ConfigJson(const transformer::GptConfig& config);

// The config.json that goes with the safetensors file `safetensors_path`: the
// same directory.
std::string Gpt2ConfigJsonPath(const std::string& safetensors_path);

// The export a Hugging Face user expects: `blobs` (whole model, serial layout)
// as safetensors at `path` and Gpt2ConfigJson(config) at
// Gpt2ConfigJsonPath(path), both written atomically. The one code path behind
// //tools:train --export_safetensors and //tools:convert_checkpoint
// --to_safetensors.
absl::Status WriteGpt2Export(const std::string& path,
                             absl::Span<const checkpoint::TensorBlob> blobs,
                             const transformer::GptConfig& config);
absl::Status WriteGpt2Export(const std::string& path, const std::vector<NamedTensor>& tensors,
                             const transformer::GptConfig& config);

// The other way: a Hugging Face GPT-2 directory (model.safetensors and
// config.json, as WriteGpt2Export writes them or as Hugging Face's own gpt2
// export has them: Conv1D weights [in, out]; an optional "transformer."
// prefix; the attention mask buffers "h.N.attn.bias"/"masked_bias" are
// skipped; an "lm_head.weight" must equal wte, the embeddings being tied).
struct Gpt2Directory {
  transformer::GptConfig model;  // from config.json
  std::vector<checkpoint::LoadedTensor> tensors;  // the serial model, HF names
};
// Every tensor GPT-2 with `model` has must be there, float32, with its shape,
// and no other; config.json must give n_layer, n_embd, n_head, vocab_size and
// n_positions (n_inner and layer_norm_epsilon optional). Errors name the file
// and the field or tensor.
absl::StatusOr<Gpt2Directory> ReadGpt2Directory(const std::string& dir);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_EXPORT_H_
