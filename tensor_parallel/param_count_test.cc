#include "tensor_parallel/param_count.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::tp {
namespace {

using ::testing::HasSubstr;

StageShape Gpt2(int64_t hidden, int64_t layers, int64_t heads) {
  StageShape s;
  s.vocab_size = 50257;
  s.padded_vocab = 50257;
  s.positions = 1024;
  s.hidden = hidden;
  s.ffn_hidden = 4 * hidden;
  s.num_heads = heads;
  s.num_layers = layers;
  return s;
}

// The published sizes of Hugging Face's GPT-2 checkpoints (sum of numel).
TEST(ParamCountTest, SerialCountsMatchPublishedGpt2Sizes) {
  absl::StatusOr<ParameterCount> small = StageParameterCountPerRank(Gpt2(768, 12, 12), 1);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(small->total(), 124439808);
  absl::StatusOr<ParameterCount> medium = StageParameterCountPerRank(Gpt2(1024, 24, 16), 1);
  ASSERT_TRUE(medium.ok()) << medium.status();
  EXPECT_EQ(medium->total(), 354823168);
}

// tp ranks together hold the serial model once, plus (tp - 1) extra copies of
// the replicated part, when the padded vocabulary is the same.
TEST(ParamCountTest, ShardsSumToTheSerialModel) {
  StageShape s = Gpt2(768, 12, 12);
  s.padded_vocab = 50304;  // 50257 rounded up to a multiple of 128.
  absl::StatusOr<ParameterCount> serial = StageParameterCountPerRank(s, 1);
  ASSERT_TRUE(serial.ok());
  for (int tp : {2, 4}) {
    absl::StatusOr<ParameterCount> c = StageParameterCountPerRank(s, tp);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->replicated, serial->replicated);
    EXPECT_EQ(c->sharded * tp, serial->sharded) << "tp=" << tp;
  }
}

TEST(ParamCountTest, PipelineStagesSplitTheModelAndCopyTheTiedHead) {
  StageShape whole = Gpt2(64, 4, 4);
  whole.vocab_size = 100;
  whole.padded_vocab = 128;
  StageShape first = whole, last = whole;
  first.num_layers = last.num_layers = 2;
  first.has_head = false;
  last.has_embedding = false;
  const int64_t wte_shard = 128 / 2 * 64;
  const int64_t w = StageParameterCountPerRank(whole, 2)->total();
  const int64_t a = StageParameterCountPerRank(first, 2)->total();
  const int64_t b = StageParameterCountPerRank(last, 2)->total();
  EXPECT_EQ(a + b, w + wte_shard);  // The last stage holds its own copy of wte.
}

TEST(ParamCountTest, BadShapesNameTheField) {
  StageShape s = Gpt2(768, 12, 12);
  EXPECT_THAT(StageParameterCountPerRank(s, 0).status().message(),
              HasSubstr("tensor_parallel=0 must be >= 1"));
  EXPECT_THAT(StageParameterCountPerRank(s, 5).status().message(),
              HasSubstr("tensor_parallel=5 must divide num_heads=12"));
  EXPECT_THAT(StageParameterCountPerRank(s, 2).status().message(),
              HasSubstr("tensor_parallel=2 must divide padded_vocab=50257"));
  s.padded_vocab = 50000;
  EXPECT_THAT(StageParameterCountPerRank(s, 1).status().message(),
              HasSubstr("padded_vocab=50000 must be >= vocab_size=50257"));
  s = Gpt2(768, 12, 12);
  s.hidden = 0;
  EXPECT_THAT(StageParameterCountPerRank(s, 1).status().message(),
              HasSubstr("hidden=0 must be > 0"));
  s = Gpt2(768, 12, 12);
  s.num_heads = 7;
  EXPECT_THAT(StageParameterCountPerRank(s, 1).status().message(),
              HasSubstr("num_heads=7 must divide hidden=768"));
  s = Gpt2(768, 12, 12);
  s.ffn_hidden = 6;
  s.padded_vocab = 50304;
  EXPECT_THAT(StageParameterCountPerRank(s, 4).status().message(),
              HasSubstr("tensor_parallel=4 must divide ffn_hidden=6"));
  s = Gpt2(768, 12, 12);
  s.num_layers = -1;
  EXPECT_THAT(StageParameterCountPerRank(s, 1).status().message(),
              HasSubstr("num_layers=-1 must be >= 0"));
}

}  // namespace
}  // namespace trident::tp
