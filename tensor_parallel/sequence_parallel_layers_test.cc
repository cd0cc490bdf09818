// The tensor-parallel layers on a sequence-parallel group against the same
// layers on a plain group (themselves checked against dense references in
// layers_test), with the same weights: given this rank's row chunk of the
// plain layer's input, every output and input gradient must be this rank's
// row chunk of the plain layer's, and every weight gradient (computed from
// chunks the layer gathers again) the plain one. tp in {1, 2, 4}, fp32,
// `local` backend.
//
// Tolerance: the reduce-scatter and the all-reduce sum the same partials over
// the group, and the gathers move values unchanged, so results must match to
// 1e-6 relative (max norm); the embedding sums one real value with exact
// zeros, so it must match bit for bit.

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

Tensor Empty(absl::Span<const int64_t> shape) {
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

// max |got - want| / max |want| over whole tensors.
double Error(const Tensor& got, const Tensor& want) {
  const std::vector<float> g = got.ToVector<float>();
  const std::vector<float> w = want.ToVector<float>();
  EXPECT_EQ(g.size(), w.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i) {
    const double d = std::abs(static_cast<double>(g[i]) - w[i]);
    if (!std::isfinite(d)) return INFINITY;
    diff = std::max(diff, d);
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// Rank `rank`'s row chunk of `full` (as its own contiguous tensor).
Tensor ChunkOf(const ExecContext& ctx, const Tensor& full, int rank, int size) {
  const int64_t rows = full.dim(0) / size;
  return ops::Clone(ctx, full.Slice(0, rank * rows, rows));
}

// `body` gets the same ranks as a plain group and as a sequence-parallel one.
void ForEachGroup(const std::function<absl::Status(int rank, int size, const TpGroup& plain,
                                                   const TpGroup& sp)>& body) {
  for (int size : {1, 2, 4}) {
    SCOPED_TRACE(absl::StrCat("tp=", size));
    absl::Status status = comm::RunLocalRanks(size, [&](int rank, comm::Communicator& world) {
      comm::Communicator* comm = size == 1 ? nullptr : &world;
      return body(rank, size, TpGroup(comm), TpGroup(comm, /*sequence_parallel=*/true));
    });
    EXPECT_TRUE(status.ok()) << status;
  }
}

TEST(SequenceParallelLayersTest, RowParallelLinearWorksOnChunks) {
  const ExecContext ctx = ExecContext::Cpu();
  ForEachGroup([&](int rank, int size, const TpGroup& plain_tp, const TpGroup& sp_tp) {
    RowParallelLinear plain("fc2", 16, 8, plain_tp, Device::Cpu());
    RowParallelLinear sp("fc2", 16, 8, sp_tp, Device::Cpu());
    for (RowParallelLinear* layer : {&plain, &sp}) {
      layer->Initialize(ctx, 7, 0.5f);
      ops::Fill(ctx, layer->bias().value, 0.25f);  // A bias that must be added once.
    }
    const Tensor x = Random({kRows, 16 / size}, 11 + rank);
    Tensor y = Empty({kRows, 8});
    RETURN_IF_ERROR(plain.Forward(ctx, x, y));
    Tensor y_chunk = Empty({kRows / size, 8});
    RETURN_IF_ERROR(sp.Forward(ctx, x, y_chunk));
    EXPECT_LT(ChunkError(y_chunk, y, rank), 1e-6) << "y: the reduce-scattered chunk";

    const Tensor dy = Random({kRows, 8}, 41);  // The same on every rank.
    Tensor dx = Empty({kRows, 16 / size});
    ASSIGN_OR_RETURN(const Tensor plain_dy, plain.BackwardInput(ctx, dy, dx));
    Tensor sp_dx = Empty({kRows, 16 / size});
    ASSIGN_OR_RETURN(const Tensor sp_dy,
                     sp.BackwardInput(ctx, ChunkOf(ctx, dy, rank, size), sp_dx));
    EXPECT_LT(Error(sp_dx, dx), 1e-6) << "dx from the gathered dy";
    EXPECT_EQ(sp_dy.dim(0), kRows) << "BackwardWeights gets dy gathered";
    plain.BackwardWeights(ctx, x, plain_dy);
    sp.BackwardWeights(ctx, x, sp_dy);
    EXPECT_LT(Error(sp.weight().grad, plain.weight().grad), 1e-6) << "dW";
    EXPECT_LT(Error(sp.bias().grad, plain.bias().grad), 1e-6) << "db: whole on every rank";
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, ColumnParallelLinearWorksOnChunks) {
  const ExecContext ctx = ExecContext::Cpu();
  ForEachGroup([&](int rank, int size, const TpGroup& plain_tp, const TpGroup& sp_tp) {
    ColumnParallelLinear plain("c_attn", 8, 24, /*blocks=*/3, plain_tp, Device::Cpu());
    ColumnParallelLinear sp("c_attn", 8, 24, /*blocks=*/3, sp_tp, Device::Cpu());
    plain.Initialize(ctx, 9, 0.5f);
    sp.Initialize(ctx, 9, 0.5f);
    const Tensor x = Random({kRows, 8}, 51);  // The same on every rank.
    const Tensor x_chunk = ChunkOf(ctx, x, rank, size);
    Tensor y = Empty({kRows, 24 / size});
    RETURN_IF_ERROR(plain.Forward(ctx, x, y));
    Tensor sp_y = Empty({kRows, 24 / size});
    RETURN_IF_ERROR(sp.Forward(ctx, x_chunk, sp_y));
    EXPECT_LT(Error(sp_y, y), 1e-6) << "y from the gathered x";

    const Tensor dy = Random({kRows, 24 / size}, 21 + rank);
    Tensor dx = Empty({kRows, 8});
    RETURN_IF_ERROR(plain.BackwardInput(ctx, dy, dx));
    Tensor dx_chunk = Empty({kRows / size, 8});
    RETURN_IF_ERROR(sp.BackwardInput(ctx, dy, dx_chunk));
    EXPECT_LT(ChunkError(dx_chunk, dx, rank), 1e-6) << "dx: the reduce-scattered chunk";

    // The weight gradient from the chunk, all-gathered again.
    RETURN_IF_ERROR(plain.BackwardWeights(ctx, x, dy));
    RETURN_IF_ERROR(sp.BackwardWeights(ctx, x_chunk, dy));
    EXPECT_LT(Error(sp.weight().grad, plain.weight().grad), 1e-6) << "dW";
    EXPECT_LT(Error(sp.bias().grad, plain.bias().grad), 1e-6) << "db";
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, EmbeddingChunkIsBitwiseTheWholeEmbedding) {
  const ExecContext ctx = ExecContext::Cpu();
  const int64_t vocab = 13, hidden = 6, batch = 3, seq = 4;
  std::vector<int32_t> ids(batch * seq);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 5 + 2) % vocab);
  const Tensor tokens = Tensor::FromVector(ids, {batch, seq});
  ForEachGroup([&](int rank, int size, const TpGroup& plain_tp, const TpGroup& sp_tp) {
    const int64_t padded = (vocab + size - 1) / size * size;
    VocabParallelEmbedding plain(VocabShard::For(vocab, padded, plain_tp), seq, hidden, plain_tp,
                                 Device::Cpu());
    VocabParallelEmbedding sp(VocabShard::For(vocab, padded, sp_tp), seq, hidden, sp_tp,
                              Device::Cpu());
    plain.Initialize(ctx, 5, 0.7f);
    sp.Initialize(ctx, 5, 0.7f);
    Tensor full = Empty({batch, seq, hidden});
    RETURN_IF_ERROR(plain.Forward(ctx, tokens, full));
    Tensor chunk = Empty({batch * seq / size, hidden});
    RETURN_IF_ERROR(sp.Forward(ctx, tokens, chunk));
    EXPECT_EQ(ChunkError(chunk, full, rank), 0.0);

    // The gradient chunk is gathered for wte and wpe, which come out whole.
    const Tensor dout = Random({batch * seq, hidden}, 61);
    RETURN_IF_ERROR(plain.BackwardWeights(ctx, tokens, dout.Reshape({batch, seq, hidden})));
    RETURN_IF_ERROR(sp.BackwardWeights(ctx, tokens, ChunkOf(ctx, dout, rank, size)));
    EXPECT_EQ(Error(sp.wte().grad, plain.wte().grad), 0.0) << "dwte";
    EXPECT_EQ(Error(sp.wpe().grad, plain.wpe().grad), 0.0) << "dwpe";
    return absl::OkStatus();
  });
}

TEST(SequenceParallelLayersTest, CrossEntropyWorksOnChunks) {
  const ExecContext ctx = ExecContext::Cpu();
  const int64_t vocab = 13, hidden = 6;
  std::vector<int32_t> t(kRows);
  for (int64_t i = 0; i < kRows; ++i) t[i] = static_cast<int32_t>((i * 3 + 1) % vocab);
  const Tensor targets = Tensor::FromVector(t, {kRows});
  const Tensor x = Random({kRows, hidden}, 31);
  ForEachGroup([&](int rank, int size, const TpGroup& plain_tp, const TpGroup& sp_tp) {
    const int64_t padded = (vocab + size - 1) / size * size;
    const VocabShard shard = VocabShard::For(vocab, padded, plain_tp);
    Parameter wte = MakeTokenEmbedding(shard, hidden, Device::Cpu());
    InitializeTokenEmbedding(ctx, shard, 3, 0.7f, wte);
    Tensor dwte[2] = {Empty(wte.value.shape()), Empty(wte.value.shape())};
    Tensor losses[2], dx[2];
    for (bool sp : {false, true}) {
      const VocabParallelCrossEntropy loss(shard, sp ? sp_tp : plain_tp, -100);
      const Tensor input = sp ? ChunkOf(ctx, x, rank, size) : x;
      Tensor logits = Empty({kRows, shard.rows.size()});
      losses[sp] = Empty({kRows});
      Tensor logsumexp = Empty({kRows});
      RETURN_IF_ERROR(loss.Forward(ctx, wte.value, input, targets, logits, losses[sp], logsumexp));
      dx[sp] = Empty(input.shape());
      RETURN_IF_ERROR(loss.BackwardInput(ctx, wte.value, targets, logsumexp, 0.5f, logits, dx[sp]));
      RETURN_IF_ERROR(loss.BackwardWeights(ctx, input, logits, dwte[sp]));
    }
    EXPECT_LT(Error(losses[1], losses[0]), 1e-6) << "losses from the gathered x";
    EXPECT_LT(ChunkError(dx[1], dx[0], rank), 1e-6) << "dx: the reduce-scattered chunk";
    EXPECT_LT(Error(dwte[1], dwte[0]), 1e-6) << "dwte from x gathered again";
    return absl::OkStatus();
  });
}

}  // namespace
}  // namespace trident::tp
