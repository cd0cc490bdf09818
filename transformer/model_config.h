#ifndef TRIDENT_TRANSFORMER_MODEL_CONFIG_H_
#define TRIDENT_TRANSFORMER_MODEL_CONFIG_H_

// The rules of a GptConfig on its own, defined once: the derived MLP width and
// what makes a model config valid. The rules that tie a model to a parallel
// layout (tensor_parallel divides num_heads, hidden_size and the MLP width;
// the layer split over pipeline stages; the vocabulary padding) live with the
// layout, in topology/layout_validation.h, which gets the model's sizes as
// topology::ModelDimensions.

#include <cstdint>

#include "absl/status/status.h"
#include "transformer/model.pb.h"

namespace trident::transformer {

// The MLP width the model is built with: ffn_hidden_size, or 4 x hidden_size
// when it is 0 (GPT-2).
int64_t FfnHiddenSize(const GptConfig& config);

// `config` with its derived sizes written out (ffn_hidden_size = the width
// FfnHiddenSize gives), so that two configs of the same model compare equal
// field by field whichever way each states it.
GptConfig CanonicalGptConfig(const GptConfig& config);

// INVALID_ARGUMENT naming the first broken rule ("model.<field>=<value> ..."):
// vocab_size, context_length, num_layers, num_heads, hidden_size >= 1;
// ffn_hidden_size >= 0 (0 means 4 x hidden_size); num_heads divides
// hidden_size; tied_embeddings is true (the only supported head); init_std
// and layer_norm_epsilon finite and > 0.
absl::Status ValidateGptConfig(const GptConfig& config);

}  // namespace trident::transformer

#endif  // TRIDENT_TRANSFORMER_MODEL_CONFIG_H_
