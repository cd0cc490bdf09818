#ifndef TRIDENT_TESTS_TENSOR_PARALLEL_STAGE_SHAPE_H_
#define TRIDENT_TESTS_TENSOR_PARALLEL_STAGE_SHAPE_H_

// Test helpers shared by the whole-stage tensor-parallel tests: a tiny GPT
// config, its tp::StageShape, and a deterministic batch.

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "tensor_parallel/param_count.h"
#include "transformer/gpt_stage.h"
#include "transformer/model.pb.h"
#include "transformer/model_config.h"

namespace trident::tp::test_support {

// 11 tokens (not a multiple of any tp > 1), 4 heads, ffn 32: tp 1, 2, 4 fit.
inline transformer::GptConfig TinyConfig() {
  transformer::GptConfig config;
  config.set_vocab_size(11);
  config.set_context_length(8);
  config.set_num_layers(3);
  config.set_num_heads(4);
  config.set_hidden_size(16);
  config.set_ffn_hidden_size(32);
  return config;
}

inline StageShape ShapeOf(const transformer::GptConfig& config,
                          const transformer::StageSpec& spec) {
  StageShape s;
  s.vocab_size = config.vocab_size();
  s.padded_vocab = spec.padded_vocab;
  s.positions = config.context_length();
  s.hidden = config.hidden_size();
  s.ffn_hidden = transformer::FfnHiddenSize(config);
  s.num_heads = config.num_heads();
  s.num_layers = spec.num_layers;
  s.has_embedding = spec.has_embedding;
  s.has_head = spec.has_head;
  return s;
}

struct Batch {
  Tensor tokens;   // [B, T] int32
  Tensor targets;  // [B, T] int32
};

inline Batch MakeBatch(int batch, int seq, int vocab) {
  std::vector<int32_t> tokens(batch * seq), targets(batch * seq);
  for (int i = 0; i < batch * seq; ++i) {
    tokens[i] = (i * 7 + 1) % vocab;
    targets[i] = (i * 5 + 2) % vocab;
  }
  return Batch{Tensor::FromVector(tokens, {batch, seq}), Tensor::FromVector(targets, {batch, seq})};
}

}  // namespace trident::tp::test_support

#endif  // TRIDENT_TESTS_TENSOR_PARALLEL_STAGE_SHAPE_H_
