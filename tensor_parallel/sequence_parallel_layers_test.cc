// The sequence-parallel forms of the tensor-parallel layers against their
// all-reduce forms (themselves checked against dense references in
// layers_test): each must produce exactly this rank's row chunk of what the
// all-reduce form produces on every rank. tp in {1, 2, 4}, fp32, `local`
// backend.
//
// Tolerance: the reduce-scatter and the all-reduce sum the same partials over
// the group, so the chunk must match to 1e-6 relative (max norm); the
// embedding sums one real value with exact zeros, so it must match bit for bit.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
#include "core/ops/elementwise.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tensor_parallel/linear.h"
#include "tensor_parallel/tp_group.h"
#include "tensor_parallel/vocab_parallel.h"

namespace trident::tp {
namespace {

constexpr int64_t kRows = 12;  // Tokens: a multiple of 1, 2, 4.

Tensor Random(std::initializer_list<int64_t> shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return Tensor::FromVector(v, shape);
}

Tensor Empty(std::initializer_list<int64_t> shape) {
  return Tensor::Zeros(shape, DType::kFloat32, Device::Cpu());
}

// max |got - rows [r * n, (r + 1) * n) of full| / max |full|; NaN gives +inf.
double ChunkError(const Tensor& got, const Tensor& full, int rank) {
  const std::vector<float> g = got.ToVector<float>();
  const std::vector<float> f = full.ToVector<float>();
  const size_t offset = static_cast<size_t>(rank) * g.size();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::abs(static_cast<double>(g[i]) - f[offset + i]);
    if (!std::isfinite(d)) return INFINITY;
    diff = std::max(diff, d);
    scale = std::max(scale, std::abs(static_cast<double>(f[offset + i])));
  }
  return scale > 0 ? diff / scale : diff;
}

void ForEachGroup(const std::function<absl::Status(int rank, int size, const TpGroup&)>& body) {
  for (int size : {1, 2, 4}) {
    SCOPED_TRACE(absl::StrCat("tp=", size));
    absl::Status status = comm::RunLocalRanks(size, [&](int rank, comm::Communicator& world) {
      return body(rank, size, size == 1 ? TpGroup() : TpGroup(&world));
    });
    EXPECT_TRUE(status.ok()) << status;
  }
}

TEST(SequenceParallelLayersTest, RowParallelForwardReduceScatterIsTheChunk) {
  const ExecContext ctx = ExecContext::Cpu();
  ForEachGroup([&](int rank, int size, const TpGroup& tp) {
    RowParallelLinear layer("fc2", 16, 8, tp, Device::Cpu());
    layer.Initialize(ctx, 7, 0.5f);
    ops::Fill(ctx, layer.bias().value, 0.25f);  // A bias that must be added once.
    const Tensor x = Random({kRows, 16 / size}, 11 + rank);
    Tensor full = Empty({kRows, 8});
    RETURN_IF_ERROR(layer.Forward(ctx, x, full));
    Tensor chunk = Empty({kRows / size, 8});
    RETURN_IF_ERROR(layer.ForwardReduceScatter(ctx, x, chunk));
    EXPECT_LT(ChunkError(chunk, full, rank), 1e-6);
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, ColumnParallelBackwardInputReduceScatterIsTheChunk) {
  const ExecContext ctx = ExecContext::Cpu();
  ForEachGroup([&](int rank, int size, const TpGroup& tp) {
    ColumnParallelLinear layer("c_attn", 8, 24, /*blocks=*/3, tp, Device::Cpu());
    layer.Initialize(ctx, 9, 0.5f);
    const Tensor dy = Random({kRows, 24 / size}, 21 + rank);
    Tensor full = Empty({kRows, 8});
    RETURN_IF_ERROR(layer.BackwardInput(ctx, dy, full));
    Tensor chunk = Empty({kRows / size, 8});
    RETURN_IF_ERROR(layer.BackwardInputReduceScatter(ctx, dy, chunk));
    EXPECT_LT(ChunkError(chunk, full, rank), 1e-6);
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, EmbeddingChunkIsBitwiseTheWholeEmbedding) {
  const ExecContext ctx = ExecContext::Cpu();
  const int64_t vocab = 13, hidden = 6, batch = 3, seq = 4;
  std::vector<int32_t> ids(batch * seq);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 5 + 2) % vocab);
  const Tensor tokens = Tensor::FromVector(ids, {batch, seq});
  ForEachGroup([&](int rank, int size, const TpGroup& tp) {
    const int64_t padded = (vocab + size - 1) / size * size;
    VocabParallelEmbedding embedding(VocabShard::For(vocab, padded, tp), seq, hidden, tp,
                                     Device::Cpu());
    embedding.Initialize(ctx, 5, 0.7f);
    Tensor full = Empty({batch, seq, hidden});
    RETURN_IF_ERROR(embedding.Forward(ctx, tokens, full));
    Tensor chunk = Empty({batch * seq / size, hidden});
    RETURN_IF_ERROR(embedding.ForwardSequenceParallel(ctx, tokens, chunk));
    EXPECT_EQ(ChunkError(chunk, full, rank), 0.0);
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, CrossEntropyInputGradientReduceScatterIsTheChunk) {
  const ExecContext ctx = ExecContext::Cpu();
  const int64_t vocab = 13, hidden = 6;
  std::vector<int32_t> t(kRows);
  for (int64_t i = 0; i < kRows; ++i) t[i] = static_cast<int32_t>((i * 3 + 1) % vocab);
  const Tensor targets = Tensor::FromVector(t, {kRows});
  const Tensor x = Random({kRows, hidden}, 31);
  ForEachGroup([&](int rank, int size, const TpGroup& tp) {
    const int64_t padded = (vocab + size - 1) / size * size;
    const VocabShard shard = VocabShard::For(vocab, padded, tp);
    Parameter wte = MakeTokenEmbedding(shard, hidden, Device::Cpu());
    InitializeTokenEmbedding(ctx, shard, 3, 0.7f, wte);
    VocabParallelCrossEntropy loss(shard, tp, -100);
    // Two forwards (the backward overwrites the logits in place).
    Tensor dx_full = Empty({kRows, hidden});
    Tensor dx_chunk = Empty({kRows / size, hidden});
    for (bool sp : {false, true}) {
      Tensor logits = Empty({kRows, shard.rows.size()});
      Tensor losses = Empty({kRows});
      Tensor logsumexp = Empty({kRows});
      RETURN_IF_ERROR(loss.Forward(ctx, wte.value, x, targets, logits, losses, logsumexp));
      if (sp) {
        RETURN_IF_ERROR(loss.BackwardInputReduceScatter(ctx, wte.value, targets, logsumexp,
                                                        0.5f, logits, dx_chunk));
      } else {
        RETURN_IF_ERROR(
            loss.BackwardInput(ctx, wte.value, targets, logsumexp, 0.5f, logits, dx_full));
      }
    }
    EXPECT_LT(ChunkError(dx_chunk, dx_full, rank), 1e-6);
    return absl::OkStatus();
  });
}

}  // namespace
}  // namespace trident::tp
