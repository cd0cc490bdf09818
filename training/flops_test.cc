#include "training/flops.h"

#include <cmath>
#include <cstdio>

#include "core/exec_context.h"
#include "gtest/gtest.h"
#include "transformer/model.pb.h"

namespace trident::training {
namespace {

transformer::GptConfig Gpt2Small(int vocab) {
  transformer::GptConfig c;
  c.set_vocab_size(vocab);
  c.set_context_length(1024);
  c.set_num_layers(12);
  c.set_num_heads(12);
  c.set_hidden_size(768);
  return c;
}

TEST(GptParameterCountTest, Gpt2SmallMatchesThePublishedCount) {
  // Hugging Face's gpt2 checkpoint: 124,439,808 parameters.
  EXPECT_EQ(GptParameterCount(Gpt2Small(50257)), 124439808);
  // nanoGPT pads the vocabulary to 50304 and reports 123.69 M parameters
  // without the position embedding (1024 x 768 = 786,432).
  EXPECT_EQ(GptParameterCount(Gpt2Small(50304)), 124475904);
  EXPECT_EQ(GptParameterCount(Gpt2Small(50304)) - 786432, 123689472);
}

TEST(GptParameterCountTest, ExplicitFfnWidth) {
  // One layer, h = 4, f = 8, vocab 10, context 3: wte 40 + wpe 12 + ln_f 8 +
  // layer (8 + 4*12 + 12 + 16 + 4 + 8 + 32 + 8 + 32 + 4 = 172).
  transformer::GptConfig c;
  c.set_vocab_size(10);
  c.set_context_length(3);
  c.set_num_layers(1);
  c.set_num_heads(2);
  c.set_hidden_size(4);
  c.set_ffn_hidden_size(8);
  EXPECT_EQ(GptParameterCount(c), 40 + 12 + 8 + 172);
}

TEST(GptFlopsPerTokenTest, SixNPlusAttention) {
  // GPT-2 small at T = 1024: 6 x 123,653,376 + 12 x 12 x 768 x 1024.
  const double expected = 6.0 * 123653376.0 + 12.0 * 12 * 768 * 1024;
  EXPECT_EQ(GptFlopsPerToken(Gpt2Small(50257), 1024), expected);
  // About 0.85 GFLOP per token (the often-quoted ~6 x 124 M + attention).
  EXPECT_NEAR(expected, 8.55e8, 0.01e8);
  // The attention term grows with the sequence, the 6N term does not.
  EXPECT_EQ(GptFlopsPerToken(Gpt2Small(50257), 2048) - GptFlopsPerToken(Gpt2Small(50257), 1024),
            12.0 * 12 * 768 * 1024);
}

TEST(ModelFlopsUtilizationTest, Ratio) {
  EXPECT_DOUBLE_EQ(ModelFlopsUtilization(1e6, 2e4, 1e11), 0.2);
}

TEST(MeasureCpuPeakFlopsTest, GivesAPlausibleRate) {
  const ExecContext ctx = ExecContext::Cpu();
  PeakFlopsOptions options;
  options.size = 256;
  options.min_time = absl::Milliseconds(20);
  const double peak = MeasureCpuPeakFlops(ctx, options);
  ASSERT_TRUE(std::isfinite(peak));
  std::printf("measured fp32 GEMM peak (256^3, 1 thread): %.3g GFLOP/s\n", peak / 1e9);
  // Any x86-64-v3 core with OpenBLAS does 1-200 GFLOP/s in fp32; far outside
  // that range means the timing or the FLOP count is wrong.
  EXPECT_GT(peak, 1e9);
  EXPECT_LT(peak, 1e12);
}

}  // namespace
}  // namespace trident::training
