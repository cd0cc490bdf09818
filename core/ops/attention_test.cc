#include "core/ops/attention.h"

#include <cmath>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/cpu/attention_reference.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::NearRelative;
using testing::RandomTensor;
using testing::ToDouble;

struct Dims {
  int64_t batch, seq, heads, head_dim;
  int64_t c() const { return heads * head_dim; }
};

struct RefResult {
  std::vector<double> out, probs, lse;
};

// Straightforward causal attention in double on the [B, T, [3][H][D]] layout.
RefResult RefAttention(const std::vector<double>& qkv, const Dims& d) {
  const int64_t c = d.c(), t = d.seq;
  RefResult r{std::vector<double>(d.batch * t * c, 0.0),
              std::vector<double>(d.batch * d.heads * t * t, 0.0),
              std::vector<double>(d.batch * d.heads * t, 0.0)};
  const double scale = 1.0 / std::sqrt(static_cast<double>(d.head_dim));
  auto at = [&](int64_t b, int64_t pos, int which, int64_t h, int64_t e) {
    return qkv[(b * t + pos) * 3 * c + which * c + h * d.head_dim + e];
  };
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t h = 0; h < d.heads; ++h) {
      for (int64_t i = 0; i < t; ++i) {
        std::vector<double> s(i + 1);
        double m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d.head_dim; ++e) dot += at(b, i, 0, h, e) * at(b, j, 1, h, e);
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - m);
        r.lse[(b * d.heads + h) * t + i] = m + std::log(sum);
        for (int64_t j = 0; j <= i; ++j) {
          const double p = std::exp(s[j] - m) / sum;
          r.probs[((b * d.heads + h) * t + i) * t + j] = p;
          for (int64_t e = 0; e < d.head_dim; ++e) {
            r.out[(b * t + i) * c + h * d.head_dim + e] += p * at(b, j, 2, h, e);
          }
        }
      }
    }
  }
  return r;
}

struct Result {
  Tensor out, lse;
};

Result RunForward(const ExecContext& ctx, const Tensor& qkv, const Dims& d) {
  Result r{Tensor::Empty({d.batch, d.seq, d.c()}, DType::kFloat32),
           Tensor::Empty({d.batch, d.heads, d.seq}, DType::kFloat32)};
  AttentionForward(ctx, qkv, static_cast<int>(d.heads), r.out, r.lse);
  return r;
}

Tensor RunBackward(const ExecContext& ctx, const Tensor& qkv, const Result& fwd,
                   const Tensor& dout, const Dims& d) {
  Tensor dqkv = Tensor::Empty(qkv.shape(), DType::kFloat32);
  AttentionBackward(ctx, qkv, fwd.out, fwd.lse, dout, static_cast<int>(d.heads), dqkv);
  return dqkv;
}

TEST(AttentionTest, ForwardMatchesReference) {
  // Short sequences, one spanning several query tiles (ragged end), and one
  // spanning two key tiles (online softmax across tiles).
  for (Dims d : {Dims{2, 7, 3, 4}, Dims{1, 150, 2, 8}, Dims{1, 300, 1, 4}}) {
    Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 1, 2.0f);
    const RefResult ref = RefAttention(ToDouble(qkv.ToVector<float>()), d);
    for (int threads : {1, 3}) {
      ExecContext ctx = ExecContext::Cpu(threads);
      Result r = RunForward(ctx, qkv, d);
      EXPECT_TRUE(NearRelative(r.out.ToVector<float>(), ref.out, 1e-5))
          << "seq " << d.seq << " threads " << threads;
      EXPECT_TRUE(NearRelative(r.lse.ToVector<float>(), ref.lse, 1e-6));
    }
  }
}

// The memory-efficient kernel against the one that stored the probabilities
// (test-only reference), forward and backward, over tile boundaries: both are
// fp32 with different summation orders, so they agree to a few ulps of the
// largest element (1e-5 relative to it; measured worst about 1e-6).
TEST(AttentionTest, MatchesTheProbabilityStoringKernel) {
  for (Dims d : {Dims{2, 64, 2, 16}, Dims{1, 129, 3, 8}, Dims{2, 257, 2, 32}, Dims{1, 600, 1, 8}}) {
    Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 11, 1.5f);
    Tensor dout = RandomTensor({d.batch, d.seq, d.c()}, 12);
    ExecContext ctx = ExecContext::Cpu(2);
    Tensor ref_out = Tensor::Empty({d.batch, d.seq, d.c()}, DType::kFloat32);
    Tensor probs = Tensor::Empty({d.batch, d.heads, d.seq, d.seq}, DType::kFloat32);
    cpu::ReferenceAttentionForward(ctx, qkv, static_cast<int>(d.heads), ref_out, probs);
    Tensor ref_dqkv = Tensor::Empty(qkv.shape(), DType::kFloat32);
    cpu::ReferenceAttentionBackward(ctx, qkv, probs, dout, static_cast<int>(d.heads), ref_dqkv);

    Result r = RunForward(ctx, qkv, d);
    EXPECT_TRUE(NearRelative(r.out.ToVector<float>(), ToDouble(ref_out.ToVector<float>()), 1e-5))
        << "seq " << d.seq;
    if (d.seq <= 256) {
      // Every row's keys in one tile: the same arithmetic, the same bits.
      EXPECT_EQ(r.out.ToVector<float>(), ref_out.ToVector<float>()) << "seq " << d.seq;
    }
    Tensor dqkv = RunBackward(ctx, qkv, r, dout, d);
    EXPECT_TRUE(NearRelative(dqkv.ToVector<float>(), ToDouble(ref_dqkv.ToVector<float>()), 1e-5))
        << "seq " << d.seq;
  }
}

TEST(AttentionTest, NanInAQueryReachesItsOutputRow) {
  Dims d{1, 70, 1, 4};
  Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 13);
  std::vector<float> v = qkv.ToVector<float>();
  v[65 * 3 * d.c()] = NAN;  // Query of position 65, in the second query tile.
  qkv.CopyFrom(v);
  ExecContext ctx = ExecContext::Cpu();
  const std::vector<float> out = RunForward(ctx, qkv, d).out.ToVector<float>();
  EXPECT_TRUE(std::isnan(out[65 * d.c()]));
  EXPECT_FALSE(std::isnan(out[64 * d.c()]));
}

TEST(AttentionTest, LargeScoresAreStableThanksToMaxSubtraction) {
  Dims d{1, 6, 1, 4};
  Tensor qkv = RandomTensor({1, 6, 12}, 2, 40.0f);  // Scores in the hundreds.
  ExecContext ctx = ExecContext::Cpu();
  Result r = RunForward(ctx, qkv, d);
  EXPECT_TRUE(NearRelative(r.out.ToVector<float>(),
                           RefAttention(ToDouble(qkv.ToVector<float>()), d).out, 1e-5));
}

TEST(AttentionTest, FutureTokensDoNotChangeEarlierOutputs) {
  Dims d{2, 20, 2, 4};
  Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 3);
  ExecContext ctx = ExecContext::Cpu();
  const std::vector<float> before = RunForward(ctx, qkv, d).out.ToVector<float>();
  const int64_t changed = 13;
  // Change every q, k, v entry of position `changed` in both sequences.
  std::vector<float> v = qkv.ToVector<float>();
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t e = 0; e < 3 * d.c(); ++e) v[(b * d.seq + changed) * 3 * d.c() + e] += 1.5f;
  }
  qkv.CopyFrom(v);
  const std::vector<float> after = RunForward(ctx, qkv, d).out.ToVector<float>();
  for (int64_t b = 0; b < d.batch; ++b) {
    for (int64_t pos = 0; pos < d.seq; ++pos) {
      bool same = true;
      for (int64_t e = 0; e < d.c(); ++e) {
        same &= before[(b * d.seq + pos) * d.c() + e] == after[(b * d.seq + pos) * d.c() + e];
      }
      if (pos < changed) {
        EXPECT_TRUE(same) << "position " << pos << " changed";
      } else {
        EXPECT_FALSE(same) << "position " << pos << " should see the change";
      }
    }
  }
}

// L = sum(out * w): AttentionBackward against central differences of the
// double reference, for one block and for several causal blocks.
TEST(AttentionTest, BackwardMatchesFiniteDifferences) {
  for (Dims d : {Dims{2, 5, 2, 3}, Dims{1, 70, 1, 2}}) {
    Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 4);
    Tensor w = RandomTensor({d.batch, d.seq, d.c()}, 5);
    const std::vector<double> wd = ToDouble(w.ToVector<float>());
    for (int threads : {1, 2}) {
      ExecContext ctx = ExecContext::Cpu(threads);
      Result r = RunForward(ctx, qkv, d);
      Tensor dqkv = RunBackward(ctx, qkv, r, w, d);
      const std::vector<double> numeric = testing::NumericGradient(
          [&](const std::vector<double>& x) { return testing::Dot(RefAttention(x, d).out, wd); },
          ToDouble(qkv.ToVector<float>()));
      EXPECT_TRUE(NearRelative(dqkv.ToVector<float>(), numeric, 1e-5))
          << "seq " << d.seq << " threads " << threads;
    }
  }
}

TEST(AttentionTest, BitwiseTheSameForAnyThreadCount) {
  Dims d{2, 300, 4, 8};  // Several query tiles and two key tiles.
  Tensor qkv = RandomTensor({d.batch, d.seq, 3 * d.c()}, 6);
  Tensor dout = RandomTensor({d.batch, d.seq, d.c()}, 7);
  std::vector<float> first_out, first_grad;
  for (int threads : {1, 2, 4}) {
    ExecContext ctx = ExecContext::Cpu(threads);
    Result r = RunForward(ctx, qkv, d);
    Tensor dqkv = RunBackward(ctx, qkv, r, dout, d);
    if (threads == 1) {
      first_out = r.out.ToVector<float>();
      first_grad = dqkv.ToVector<float>();
    } else {
      EXPECT_EQ(r.out.ToVector<float>(), first_out);
      EXPECT_EQ(dqkv.ToVector<float>(), first_grad);
    }
  }
}

TEST(AttentionDeathTest, BadShapesAbort) {
  ExecContext ctx = ExecContext::Cpu();
  Tensor qkv = Tensor::Empty({2, 4, 24}, DType::kFloat32);
  Tensor out = Tensor::Empty({2, 4, 8}, DType::kFloat32);
  Tensor lse = Tensor::Empty({2, 2, 4}, DType::kFloat32);
  EXPECT_DEATH(AttentionForward(ctx, qkv, 5, out, lse), "not 3 \\* 5 heads \\* head_dim");
  EXPECT_DEATH(AttentionForward(ctx, qkv, 2, Tensor::Empty({2, 4, 9}, DType::kFloat32), lse),
               "out is fp32\\[2, 4, 9\\] cpu but must have shape \\[2, 4, 8\\]");
  EXPECT_DEATH(AttentionForward(ctx, qkv, 2, out, Tensor::Empty({2, 2, 4, 4}, DType::kFloat32)),
               "lse is fp32\\[2, 2, 4, 4\\]");
  EXPECT_DEATH(AttentionBackward(ctx, qkv, out, Tensor::Empty({2, 2, 5}, DType::kFloat32), out, 2,
                                 Tensor::Empty({2, 4, 24}, DType::kFloat32)),
               "lse is fp32\\[2, 2, 5\\]");
}

}  // namespace
}  // namespace trident::ops
