// Each tensor-parallel layer against a dense reference computed here in double
// precision from the full (serial) weights: forward outputs, input gradients
// and the gathered weight gradients, for tp in {1, 2, 4, 8}, fp32 on the CPU
// with the `local` backend (ranks are threads).
//
// Tolerance: max |got - want| / max |want| under 1e-5 for every tensor (fp32
// against double on sums of at most a few dozen terms). NaN or infinity never
// passes (RelativeError returns +infinity for them).

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tensor_parallel/gather.h"
#include "tensor_parallel/linear.h"
#include "tensor_parallel/tp_group.h"
#include "tensor_parallel/vocab_parallel.h"

namespace trident::tp {
namespace {

constexpr double kTolerance = 1e-5;

// A dense row-major matrix in double: the reference side of every test.
struct Dense {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<double> v;

  Dense() = default;
  Dense(int64_t r, int64_t c) : rows(r), cols(c), v(static_cast<size_t>(r * c), 0.0) {}
  double& at(int64_t r, int64_t c) { return v[static_cast<size_t>(r * cols + c)]; }
  double at(int64_t r, int64_t c) const { return v[static_cast<size_t>(r * cols + c)]; }
};

Dense RandomDense(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Dense d(rows, cols);
  // Values are fp32-representable so both sides start from the same numbers.
  for (double& x : d.v) x = dist(gen);
  return d;
}

// op(a) op(b) with op = transpose when the flag is set.
Dense MatMul(const Dense& a, bool ta, const Dense& b, bool tb) {
  const int64_t m = ta ? a.cols : a.rows;
  const int64_t k = ta ? a.rows : a.cols;
  const int64_t n = tb ? b.rows : b.cols;
  TRIDENT_CHECK_EQ(k, tb ? b.cols : b.rows);
  Dense c(m, n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        s += (ta ? a.at(p, i) : a.at(i, p)) * (tb ? b.at(j, p) : b.at(p, j));
      }
      c.at(i, j) = s;
    }
  }
  return c;
}

// The columns `cols` of `d`, in that order.
Dense Columns(const Dense& d, const std::vector<int64_t>& cols) {
  Dense out(d.rows, static_cast<int64_t>(cols.size()));
  for (int64_t r = 0; r < d.rows; ++r) {
    for (size_t j = 0; j < cols.size(); ++j) out.at(r, static_cast<int64_t>(j)) = d.at(r, cols[j]);
  }
  return out;
}

Dense Rows(const Dense& d, int64_t begin, int64_t count) {
  Dense out(count, d.cols);
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t c = 0; c < d.cols; ++c) out.at(r, c) = d.at(begin + r, c);
  }
  return out;
}

std::vector<float> Floats(const Dense& d) { return std::vector<float>(d.v.begin(), d.v.end()); }

Tensor ToTensor(const Dense& d) {
  std::vector<float> f(d.v.begin(), d.v.end());
  return Tensor::FromVector(f, {d.rows, d.cols});
}

// Column ids a column-parallel shard holds: its piece of every block.
std::vector<int64_t> ColumnShard(int64_t out, int blocks, int tp, int rank) {
  const int64_t block = out / blocks;
  const int64_t local_block = block / tp;
  std::vector<int64_t> cols;
  for (int j = 0; j < blocks; ++j) {
    for (int64_t c = 0; c < local_block; ++c) cols.push_back(j * block + rank * local_block + c);
  }
  return cols;
}

std::vector<int64_t> Iota(int64_t begin, int64_t count) {
  std::vector<int64_t> ids(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) ids[static_cast<size_t>(i)] = begin + i;
  return ids;
}

std::vector<double> ColumnSums(const Dense& d) {
  std::vector<double> s(static_cast<size_t>(d.cols), 0.0);
  for (int64_t r = 0; r < d.rows; ++r) {
    for (int64_t c = 0; c < d.cols; ++c) s[static_cast<size_t>(c)] += d.at(r, c);
  }
  return s;
}

// max |got - want| / max |want|; +infinity on NaN/inf or a size mismatch.
double RelativeError(const std::vector<float>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, scale = 1e-30;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    diff = std::max(diff, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return diff / scale;
}

void ExpectClose(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  const double err = RelativeError(got.ToVector<float>(), want);
  EXPECT_LE(err, kTolerance) << what << ": relative error " << err;
}

TpGroup GroupOf(int tp_size, comm::Communicator& world) {
  // tp = 1 is the serial model exactly as GptStage builds it: no communicator.
  return tp_size == 1 ? TpGroup() : TpGroup(&world);
}

// --- ColumnParallelLinear ---------------------------------------------------

class ColumnParallelLinearTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(ColumnParallelLinearTest, MatchesDenseReference) {
  const int tp_size = std::get<0>(GetParam());
  const int blocks = std::get<1>(GetParam());
  const int64_t n = 6, in = 8, out = 24;  // out divisible by 3 blocks * 8 ranks.
  const Dense x = RandomDense(n, in, 1), w = RandomDense(in, out, 2), dy = RandomDense(n, out, 3);
  const Dense b = RandomDense(1, out, 4);
  // Reference: y = x W + b, dx = dy W^T, dW = x^T dy, db = column sums of dy.
  Dense y = MatMul(x, false, w, false);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < out; ++c) y.at(r, c) += b.at(0, c);
  }
  const Dense dx = MatMul(dy, false, w, true);
  const Dense dw = MatMul(x, true, dy, false);
  const std::vector<double> db = ColumnSums(dy);

  const ExecContext ctx = ExecContext::Cpu();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = GroupOf(tp_size, world);
    ColumnParallelLinear layer("fc", in, out, blocks, tp, Device::Cpu());
    EXPECT_EQ(layer.local_out_features(), out / tp_size);
    const std::vector<int64_t> cols = ColumnShard(out, blocks, tp_size, rank);
    layer.weight().value.CopyFrom(Floats(Columns(w, cols)));
    layer.bias().value.CopyFrom(Floats(Columns(b, cols)));
    const std::string where = absl::StrCat("rank ", rank, " ");

    Tensor y_local = Tensor::Empty({n, out / tp_size}, DType::kFloat32);
    RETURN_IF_ERROR(layer.Forward(ctx, ToTensor(x), y_local));
    ExpectClose(y_local, Columns(y, cols).v, where + "y");
    ASSIGN_OR_RETURN(Tensor y_full, layer.ForwardGatherOutput(ctx, ToTensor(x)));
    ExpectClose(y_full, y.v, where + "gathered y");

    Tensor dy_local = ToTensor(Columns(dy, cols));
    Tensor dx_got = Tensor::Empty({n, in}, DType::kFloat32);
    RETURN_IF_ERROR(layer.BackwardInput(ctx, dy_local, dx_got));
    ExpectClose(dx_got, dx.v, where + "dx (all-reduced)");

    RETURN_IF_ERROR(layer.BackwardWeights(ctx, ToTensor(x), dy_local));
    ASSIGN_OR_RETURN(Tensor dw_full,
                     GatherShards(ctx, layer.weight().grad, layer.weight().layout, tp));
    ExpectClose(dw_full, dw.v, where + "gathered dW");
    ASSIGN_OR_RETURN(Tensor db_full, GatherShards(ctx, layer.bias().grad, layer.bias().layout, tp));
    ExpectClose(db_full, db, where + "gathered db");

    // BackwardWeights accumulates: a second micro-batch doubles the gradient.
    RETURN_IF_ERROR(layer.BackwardWeights(ctx, ToTensor(x), dy_local));
    std::vector<double> twice = Columns(dw, cols).v;
    for (double& v : twice) v *= 2;
    ExpectClose(layer.weight().grad, twice, where + "dW after two micro-batches");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

INSTANTIATE_TEST_SUITE_P(TpAndBlocks, ColumnParallelLinearTest,
                         ::testing::Combine(::testing::Values(1, 2, 4, 8),
                                            ::testing::Values(1, 3)),
                         [](const auto& info) {
                           return absl::StrCat("tp", std::get<0>(info.param), "_blocks",
                                               std::get<1>(info.param));
                         });

// --- RowParallelLinear --------------------------------------------------------

class RowParallelLinearTest : public ::testing::TestWithParam<int> {};

TEST_P(RowParallelLinearTest, MatchesDenseReference) {
  const int tp_size = GetParam();
  const int64_t n = 6, in = 16, out = 5;
  const Dense x = RandomDense(n, in, 11), w = RandomDense(in, out, 12);
  const Dense dy = RandomDense(n, out, 13);
  const Dense b = RandomDense(1, out, 14);
  Dense y = MatMul(x, false, w, false);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < out; ++c) y.at(r, c) += b.at(0, c);
  }
  const Dense dx = MatMul(dy, false, w, true);
  const Dense dw = MatMul(x, true, dy, false);
  const std::vector<double> db = ColumnSums(dy);

  const ExecContext ctx = ExecContext::Cpu();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = GroupOf(tp_size, world);
    RowParallelLinear layer("proj", in, out, tp, Device::Cpu());
    const int64_t local_in = in / tp_size;
    EXPECT_EQ(layer.local_in_features(), local_in);
    const std::vector<int64_t> mine = Iota(rank * local_in, local_in);
    layer.weight().value.CopyFrom(Floats(Rows(w, rank * local_in, local_in)));
    layer.bias().value.CopyFrom(Floats(b));
    const std::string where = absl::StrCat("rank ", rank, " ");

    const Tensor x_local = ToTensor(Columns(x, mine));
    Tensor y_got = Tensor::Empty({n, out}, DType::kFloat32);
    RETURN_IF_ERROR(layer.Forward(ctx, x_local, y_got));
    ExpectClose(y_got, y.v, where + "y (all-reduced, bias once)");

    Tensor dx_local = Tensor::Empty({n, local_in}, DType::kFloat32);
    ASSIGN_OR_RETURN(const Tensor dy_for_weights, layer.BackwardInput(ctx, ToTensor(dy), dx_local));
    ExpectClose(dx_local, Columns(dx, mine).v, where + "dx shard");

    layer.BackwardWeights(ctx, x_local, dy_for_weights);
    ASSIGN_OR_RETURN(Tensor dw_full,
                     GatherShards(ctx, layer.weight().grad, layer.weight().layout, tp));
    ExpectClose(dw_full, dw.v, where + "gathered dW");
    // The bias is replicated: every rank holds the whole gradient.
    EXPECT_TRUE(layer.bias().layout.replicated());
    ExpectClose(layer.bias().grad, db, where + "db");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

INSTANTIATE_TEST_SUITE_P(Tp, RowParallelLinearTest, ::testing::Values(1, 2, 4, 8),
                         [](const auto& info) { return absl::StrCat("tp", info.param); });

// --- Initialization is layout-independent (DESIGN.md rule 2) -------------------

TEST(TensorParallelInitTest, GatheredShardsEqualTheSerialValuesBitwise) {
  const ExecContext ctx = ExecContext::Cpu();
  const uint64_t seed = 77;
  ColumnParallelLinear serial_qkv("h.0.attn.c_attn", 8, 24, 3, TpGroup(), Device::Cpu());
  RowParallelLinear serial_proj("h.0.attn.c_proj", 8, 8, TpGroup(), Device::Cpu());
  const VocabShard serial_shard = VocabShard::For(11, 16, TpGroup());
  VocabParallelEmbedding serial_emb(serial_shard, 8, 8, TpGroup(), Device::Cpu());
  serial_qkv.Initialize(ctx, seed, 0.02f);
  serial_proj.Initialize(ctx, seed, 0.02f);
  serial_emb.Initialize(ctx, seed, 0.02f);
  for (int tp_size : {2, 4, 8}) {
    SCOPED_TRACE(absl::StrCat("tp=", tp_size));
    absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
      const TpGroup tp(&world);
      ColumnParallelLinear qkv("h.0.attn.c_attn", 8, 24, 3, tp, Device::Cpu());
      RowParallelLinear proj("h.0.attn.c_proj", 8, 8, tp, Device::Cpu());
      VocabParallelEmbedding emb(VocabShard::For(11, 16, tp), 8, 8, tp, Device::Cpu());
      qkv.Initialize(ctx, seed, 0.02f);
      proj.Initialize(ctx, seed, 0.02f);
      emb.Initialize(ctx, seed, 0.02f);
      const std::vector<std::pair<Parameter*, Parameter*>> pairs = {
          {&qkv.weight(), &serial_qkv.weight()}, {&proj.weight(), &serial_proj.weight()},
          {&emb.wte(), &serial_emb.wte()},       {&emb.wpe(), &serial_emb.wpe()}};
      for (const auto& [mine, serial] : pairs) {
        ASSIGN_OR_RETURN(Tensor full, GatherShards(ctx, mine->value, mine->layout, tp));
        EXPECT_EQ(full.ToVector<float>(), serial->value.ToVector<float>())
            << "rank " << rank << " " << mine->name;
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
  }
  // The padding rows of the serial table are zero, the real ones are not.
  const std::vector<float> wte = serial_emb.wte().value.ToVector<float>();
  for (int64_t i = 11 * 8; i < 16 * 8; ++i) EXPECT_EQ(wte[i], 0.0f) << i;
  double real = 0;
  for (int64_t i = 0; i < 11 * 8; ++i) real += std::abs(wte[i]);
  EXPECT_GT(real, 0.0);
}

// --- Vocabulary-parallel layers ---------------------------------------------------

// A tp degree and a padded vocabulary for the 11-token vocabulary: 11 is not a
// multiple of any tp > 1, and some cases leave whole shards of padding (tp 4 of
// 16: rank 3 holds rows 12-15; tp 8 of 24: ranks 4-7 hold rows 12-23).
struct VocabCase {
  int tp;
  int64_t padded;
};

std::string VocabCaseName(const ::testing::TestParamInfo<VocabCase>& info) {
  return absl::StrCat("tp", info.param.tp, "_padded", info.param.padded);
}

const std::vector<VocabCase>& VocabCases() {
  static const auto* cases = new std::vector<VocabCase>{
      {1, 11}, {1, 16}, {2, 12}, {2, 16}, {4, 12}, {4, 16}, {8, 16}, {8, 24}};
  return *cases;
}

constexpr int64_t kVocab = 11;

class VocabParallelEmbeddingTest : public ::testing::TestWithParam<VocabCase> {};

TEST_P(VocabParallelEmbeddingTest, MatchesDenseReference) {
  const int tp_size = GetParam().tp;
  const int64_t padded = GetParam().padded;
  const int64_t batch = 2, seq = 5, positions = 8, hidden = 6;
  const std::vector<int32_t> tokens = {0, 10, 3, 3, 7, 10, 1, 5, 9, 2};  // First and last ids.
  Dense wte = RandomDense(padded, hidden, 21);
  for (int64_t r = kVocab; r < padded; ++r) {
    for (int64_t c = 0; c < hidden; ++c) wte.at(r, c) = 0;  // Padding rows are zero.
  }
  const Dense wpe = RandomDense(positions, hidden, 22);
  const Dense dout = RandomDense(batch * seq, hidden, 23);
  // Reference: out[b, t] = wte[token] + wpe[t]; dwte[token] += dout; dwpe[t] += dout.
  Dense out(batch * seq, hidden), dwte(padded, hidden), dwpe(positions, hidden);
  for (int64_t i = 0; i < batch * seq; ++i) {
    const int64_t t = i % seq;
    for (int64_t c = 0; c < hidden; ++c) {
      out.at(i, c) = wte.at(tokens[i], c) + wpe.at(t, c);
      dwte.at(tokens[i], c) += dout.at(i, c);
      dwpe.at(t, c) += dout.at(i, c);
    }
  }

  const ExecContext ctx = ExecContext::Cpu();
  const Tensor token_tensor = Tensor::FromVector(tokens, {batch, seq});
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = GroupOf(tp_size, world);
    const VocabShard shard = VocabShard::For(kVocab, padded, tp);
    EXPECT_EQ(shard.rows.size(), padded / tp_size);
    VocabParallelEmbedding emb(shard, positions, hidden, tp, Device::Cpu());
    emb.wte().value.CopyFrom(Floats(Rows(wte, shard.rows.begin, shard.rows.size())));
    emb.wpe().value.CopyFrom(Floats(wpe));
    const std::string where = absl::StrCat("rank ", rank, " rows [", shard.rows.begin, ", ",
                                           shard.rows.end, ") ");

    Tensor out_got = Tensor::Empty({batch, seq, hidden}, DType::kFloat32);
    RETURN_IF_ERROR(emb.Forward(ctx, token_tensor, out_got));
    ExpectClose(out_got, out.v, where + "out");

    RETURN_IF_ERROR(
        emb.BackwardWeights(ctx, token_tensor, ToTensor(dout).Reshape({batch, seq, hidden})));
    ASSIGN_OR_RETURN(Tensor dwte_full, GatherShards(ctx, emb.wte().grad, emb.wte().layout, tp));
    ExpectClose(dwte_full, dwte.v, where + "gathered dwte");
    ExpectClose(emb.wpe().grad, dwpe.v, where + "dwpe");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

INSTANTIATE_TEST_SUITE_P(Padding, VocabParallelEmbeddingTest, ::testing::ValuesIn(VocabCases()),
                         VocabCaseName);

class VocabParallelCrossEntropyTest : public ::testing::TestWithParam<VocabCase> {};

TEST_P(VocabParallelCrossEntropyTest, MatchesDenseReference) {
  const int tp_size = GetParam().tp;
  const int64_t padded = GetParam().padded;
  const int32_t ignore = -100;
  const int64_t n = 7, hidden = 6;
  const std::vector<int32_t> targets = {0, 10, ignore, 4, 10, 7, 1};
  const Dense x = RandomDense(n, hidden, 31);
  Dense wte = RandomDense(padded, hidden, 32);
  // Padding rows hold large values here (not the zeros training keeps them at)
  // so any padding logit leaking into the softmax would change the loss.
  for (int64_t r = kVocab; r < padded; ++r) {
    for (int64_t c = 0; c < hidden; ++c) wte.at(r, c) = 3.0 + 0.1 * c;
  }
  const double grad_scale = 1.0 / 6;  // One over the targets that count.

  // Reference over the real vocabulary only.
  const Dense logits = MatMul(x, false, Rows(wte, 0, kVocab), true);
  std::vector<double> losses(n, 0.0), lse(n, 0.0);
  Dense dlogits(n, padded);  // Padding columns keep a zero gradient.
  for (int64_t i = 0; i < n; ++i) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < kVocab; ++j) m = std::max(m, logits.at(i, j));
    double s = 0;
    for (int64_t j = 0; j < kVocab; ++j) s += std::exp(logits.at(i, j) - m);
    lse[i] = m + std::log(s);
    if (targets[i] == ignore) continue;
    losses[i] = lse[i] - logits.at(i, targets[i]);
    for (int64_t j = 0; j < kVocab; ++j) {
      dlogits.at(i, j) = grad_scale * (std::exp(logits.at(i, j) - lse[i]) - (j == targets[i]));
    }
  }
  const Dense dx = MatMul(dlogits, false, wte, false);
  const Dense dwte = MatMul(dlogits, true, x, false);

  const ExecContext ctx = ExecContext::Cpu();
  const Tensor target_tensor = Tensor::FromVector(targets, {n});
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp = GroupOf(tp_size, world);
    const VocabShard shard = VocabShard::For(kVocab, padded, tp);
    const int64_t rows = shard.rows.size();
    Parameter wte_param = MakeTokenEmbedding(shard, hidden, Device::Cpu());
    wte_param.value.CopyFrom(Floats(Rows(wte, shard.rows.begin, rows)));
    VocabParallelCrossEntropy loss(shard, tp, ignore);
    const std::string where = absl::StrCat("rank ", rank, " rows [", shard.rows.begin, ", ",
                                           shard.rows.end, ") ");

    Tensor logits_local = Tensor::Empty({n, rows}, DType::kFloat32);
    Tensor losses_got = Tensor::Empty({n}, DType::kFloat32);
    Tensor lse_got = Tensor::Empty({n}, DType::kFloat32);
    RETURN_IF_ERROR(loss.Forward(ctx, wte_param.value, ToTensor(x), target_tensor, logits_local,
                                 losses_got, lse_got));
    ExpectClose(losses_got, losses, where + "losses");
    ExpectClose(lse_got, lse, where + "logsumexp");

    Tensor dx_got = Tensor::Empty({n, hidden}, DType::kFloat32);
    RETURN_IF_ERROR(loss.BackwardInput(ctx, wte_param.value, target_tensor, lse_got,
                                       static_cast<float>(grad_scale), logits_local, dx_got));
    ExpectClose(logits_local, Columns(dlogits, Iota(shard.rows.begin, rows)).v,
                where + "dlogits shard");
    ExpectClose(dx_got, dx.v, where + "dx (all-reduced)");

    RETURN_IF_ERROR(loss.BackwardWeights(ctx, ToTensor(x), logits_local, wte_param.grad));
    ASSIGN_OR_RETURN(Tensor dwte_full, GatherShards(ctx, wte_param.grad, wte_param.layout, tp));
    ExpectClose(dwte_full, dwte.v, where + "gathered dwte");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

INSTANTIATE_TEST_SUITE_P(Padding, VocabParallelCrossEntropyTest,
                         ::testing::ValuesIn(VocabCases()), VocabCaseName);

TEST(VocabShardTest, RowsAndValidRowsWithPadding) {
  // tp 4 over 16 rows of an 11-token vocabulary.
  const int64_t want_valid[] = {4, 4, 3, 0};
  absl::Status status = comm::RunLocalRanks(4, [&](int rank, comm::Communicator& world) {
    const VocabShard shard = VocabShard::For(kVocab, 16, TpGroup(&world));
    EXPECT_EQ(shard.rows.begin, 4 * rank);
    EXPECT_EQ(shard.rows.end, 4 * rank + 4);
    EXPECT_EQ(shard.valid_rows(), want_valid[rank]) << "rank " << rank;
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace trident::tp
