#ifndef TRIDENT_CORE_PARAMETER_H_
#define TRIDENT_CORE_PARAMETER_H_

// A trainable parameter: its value, its gradient, and where it sits in the
// serial model. The optimizer, data-parallel gradient sync, checkpoints and
// exports all work on lists of Parameters and never need to know the model.

#include <string>
#include <vector>

#include "core/tensor.h"

namespace trident {

// How a rank's tensor relates to the full (serial) parameter of the same name.
// The full shape is `global_shape`. With tensor parallelism the tensor is shard
// `shard_index` of `num_shards` along dim `split_dim`; when that dim holds
// `blocks` equal blocks (a fused QKV weight holds 3: Q, K, V), each block is
// split separately and the shard holds its piece of every block, in block order.
struct ShardLayout {
  Shape global_shape;
  int split_dim = -1;  // -1: replicated (the tensor is the whole parameter).
  int num_shards = 1;
  int shard_index = 0;
  int blocks = 1;

  bool replicated() const { return split_dim < 0 || num_shards == 1; }
};

struct Parameter {
  // The serial model's name (Hugging Face GPT-2 names: "h.0.attn.c_attn.weight").
  std::string name;
  Tensor value;
  // Same shape as value; gradients accumulate into it over micro-batches.
  Tensor grad;
  // Decoupled weight decay applies to matrices and embeddings, not to biases or
  // LayerNorm parameters.
  bool weight_decay = true;
  ShardLayout layout;
};

// Non-owning list; the model owns its Parameters.
using ParameterList = std::vector<Parameter*>;

}  // namespace trident

#endif  // TRIDENT_CORE_PARAMETER_H_
