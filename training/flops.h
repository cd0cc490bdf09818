#ifndef TRIDENT_TRAINING_FLOPS_H_
#define TRIDENT_TRAINING_FLOPS_H_

// Model FLOPs utilisation (MFU): the FLOPs a GPT training step needs, and the
// rate a CPU can actually sustain to compare them with.
//
// Model FLOPs per token (forward + backward), the formula of the PaLM paper
// (Chowdhery et al. 2022, appendix B) as nanoGPT and Megatron-LM use it:
//
//   6 N + 12 L h T
//
//   N: the parameters that multiply activations: every parameter except the
//      position embedding, which is only looked up. The token embedding is
//      counted once: with tied embeddings it is also the output head's weight
//      (a [hidden, vocab] matrix product, real work), while its lookup is free.
//      Each such weight costs 2 FLOPs per token forward (a multiply-add) and 4
//      backward (gradients for the input and for the weight): 6 N. (Biases and
//      LayerNorm parameters are counted too; they are < 1 % of N.)
//   12 L h T: attention scores Q K^T and the weighted sum of V, each 2 h T
//      FLOPs per token per layer forward (T = seq_length keys, h = hidden size
//      summed over heads), times 3 for forward + backward. Counted in full
//      although the causal mask makes half of it unnecessary, as the
//      references do, so MFU numbers compare with published ones.
//
// Not counted: softmax, GELU, LayerNorm and other elementwise work, and
// recomputation (MFU counts the model's work, not the hardware's: HFU would).
// The vocabulary is the model's own (50257 for GPT-2, not a padded 50304):
// padding rows are extra hardware work, not model work.
//
// MFU = FLOPs per token x tokens per second / peak FLOP/s. On a GPU the peak is
// the datasheet's dense matrix rate. On a CPU no datasheet number fits (it
// depends on cores, vector width, clocks and OpenBLAS), so the peak is measured
// instead: MeasureCpuPeakFlops times large fp32 GEMMs through the same ops::Gemm
// the model uses. CPU MFU is therefore relative to the best GEMM rate this
// machine reached with the rank's threads, not to a theoretical peak: 100 %
// means "as fast as a single big GEMM".

#include <cstdint>

#include "absl/time/time.h"
#include "core/exec_context.h"
#include "transformer/model.pb.h"

namespace trident::training {

// Every parameter of the GPT-2 architecture with a tied head: token and
// position embeddings, per layer two LayerNorms (weight, bias), the fused QKV
// projection [h, 3h] + bias, the attention output projection [h, h] + bias, the
// MLP [h, f] + bias and [f, h] + bias, and the final LayerNorm. GPT-2 small
// (vocab 50257, context 1024, 12 layers, hidden 768) has 124,439,808.
int64_t GptParameterCount(const transformer::GptConfig& model);

// 6 N + 12 L h T as above, N = GptParameterCount - context_length x hidden.
double GptFlopsPerToken(const transformer::GptConfig& model, int64_t seq_length);

// flops_per_token x tokens_per_second / peak_flops_per_second (a fraction).
double ModelFlopsUtilization(double flops_per_token, double tokens_per_second,
                             double peak_flops_per_second);

struct PeakFlopsOptions {
  // Square fp32 GEMMs of this size (2 size^3 FLOPs each).
  int64_t size = 512;
  // Keep timing GEMMs until this much time has passed (after one warm-up GEMM).
  absl::Duration min_time = absl::Milliseconds(50);
};

// The best FLOP/s of single GEMMs on ctx's device with ctx's threads (a CPU
// context; checked). Best, not mean: interruptions only ever slow a GEMM down,
// so the fastest one is the closest to what the machine can do.
double MeasureCpuPeakFlops(const ExecContext& ctx, const PeakFlopsOptions& options = {});

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_FLOPS_H_
