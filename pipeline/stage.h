#ifndef TRIDENT_PIPELINE_STAGE_H_
#define TRIDENT_PIPELINE_STAGE_H_

// What the pipeline executor drives: the model chunks one pipeline stage holds.
// The pipeline knows nothing of the model behind it (a GPT in training/, a toy
// chain in the tests); it only moves activations and their gradients between
// the chunks' F, B and W passes, in the order a Schedule lists them.
//
// Chunks are local indices (0 <= chunk < v). A chunk that is the first model
// chunk reads its own input (the stage knows the micro-batch's tokens); the last
// model chunk computes the loss itself. Between those, a forward output is the
// next model chunk's input and a backward's input gradient is the previous
// model chunk's output gradient, with the same shape.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/dtype.h"
#include "core/tensor.h"

namespace trident::pipeline {

class PipelineStage {
 public:
  virtual ~PipelineStage() = default;

  // Shape and dtype of the activation that flows into local chunk `chunk` for
  // micro-batch `mb` (and of its gradient, flowing back out). Used to allocate
  // receive buffers; never called for the first model chunk.
  virtual std::vector<int64_t> InputShape(int chunk, int mb) const = 0;
  // Shape of chunk's output (the next model chunk's input) and of its gradient.
  virtual std::vector<int64_t> OutputShape(int chunk, int mb) const = 0;
  virtual DType ActivationDType() const { return DType::kFloat32; }

  // F: forward of `mb` through `chunk`. `input` is undefined for the first
  // model chunk. Returns the output activation, undefined for the last model
  // chunk. Keeps whatever its backward needs (the stash) until W.
  virtual absl::StatusOr<Tensor> Forward(int chunk, int mb, const Tensor& input) = 0;
  // B: the gradient of the chunk's input, given the gradient of its output
  // (undefined for the last model chunk, whose output is the loss). Returns an
  // undefined tensor for the first model chunk.
  virtual absl::StatusOr<Tensor> BackwardInput(int chunk, int mb, const Tensor& grad_output) = 0;
  // W: accumulates the chunk's weight gradients for `mb` and frees its stash.
  virtual absl::Status BackwardWeight(int chunk, int mb) = 0;
};

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_STAGE_H_
