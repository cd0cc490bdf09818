#include "data_parallel/grad_buckets.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::data_parallel {
namespace {

// Parameters of `sizes` elements each, named p0, p1, ... (listed in order of
// use, as a model lists them), gradients zero.
std::vector<std::unique_ptr<Parameter>> MakeParams(const std::vector<int64_t>& sizes) {
  std::vector<std::unique_ptr<Parameter>> params;
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto p = std::make_unique<Parameter>();
    p->name = absl::StrCat("p", i);
    p->value = Tensor::Zeros({sizes[i]}, DType::kFloat32);
    p->grad = Tensor::Zeros({sizes[i]}, DType::kFloat32);
    params.push_back(std::move(p));
  }
  return params;
}

// Replica `rank`'s gradients: element i of every parameter is rank + 1 + i.
void FillGradients(const std::vector<std::unique_ptr<Parameter>>& params, int rank) {
  for (const auto& p : params) {
    float* g = p->grad.data<float>();
    for (int64_t i = 0; i < p->grad.numel(); ++i) g[i] = static_cast<float>(rank + 1 + i);
  }
}

ParameterList ListOf(const std::vector<std::unique_ptr<Parameter>>& params) {
  ParameterList list;
  for (const auto& p : params) list.push_back(p.get());
  return list;
}

std::vector<std::string> Names(const GradientBucket& bucket) {
  std::vector<std::string> names;
  for (const Parameter* p : bucket.params) names.push_back(p->name);
  return names;
}

// 1 KiB buckets hold 256 floats.
constexpr double kBucketMb = 1.0 / 1024;

TEST(GradientReducer, FillsBucketsInReverseOrderOfUseAndPadsToDp) {
  // p3 (300) is larger than a bucket: alone. p2 + p1 = 250 fit; p0 starts the next.
  auto params = MakeParams({7, 150, 100, 300});
  std::unique_ptr<comm::LocalWorld> world = *comm::LocalWorld::Create(4);
  // Only the group's size is used here (nothing is reduced).
  auto reducer = GradientReducer::Create(ListOf(params), {}, &world->world(0),
                                         {.bucket_mb = kBucketMb, .overlap = true});
  ASSERT_TRUE(reducer.ok()) << reducer.status();
  const auto& buckets = (*reducer)->buckets();
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(Names(buckets[0]), (std::vector<std::string>{"p3"}));
  EXPECT_EQ(Names(buckets[1]), (std::vector<std::string>{"p2", "p1"}));
  EXPECT_EQ(Names(buckets[2]), (std::vector<std::string>{"p0"}));
  EXPECT_EQ(buckets[0].buffer.numel(), 300);  // Already a multiple of 4.
  EXPECT_EQ(buckets[1].buffer.numel(), 252);  // 250 padded to a multiple of 4.
  EXPECT_EQ(buckets[2].buffer.numel(), 8);
  EXPECT_EQ((*reducer)->gradient_bytes(), (300 + 252 + 8) * 4);
  // Gradients are views: writing p1's gradient writes bucket 1 after p2.
  params[1]->grad.data<float>()[0] = 5.0f;
  EXPECT_EQ(buckets[1].buffer.data<float>()[100], 5.0f);
}

TEST(GradientReducer, RejectsZeroStagesItDoesNotImplement) {
  auto params = MakeParams({4});
  for (int stage : {-1, 4}) {
    auto reducer =
        GradientReducer::Create(ListOf(params), {}, nullptr, {.bucket_mb = 1, .zero_stage = stage});
    ASSERT_FALSE(reducer.ok());
    EXPECT_EQ(reducer.status().message(),
              absl::StrCat("zero_stage=", stage,
                           ": the gradient reducer implements ZeRO stages 0 to 3"));
  }
}

TEST(GradientReducer, RejectsNonPositiveBucketSize) {
  auto params = MakeParams({4});
  for (double mb : {0.0, -1.0}) {
    auto reducer = GradientReducer::Create(ListOf(params), {}, nullptr, {.bucket_mb = mb});
    ASSERT_FALSE(reducer.ok());
    EXPECT_EQ(reducer.status().message(),
              absl::StrCat("grad_bucket_mb=", mb, " must be a positive number of MiB"));
  }
}

// Two replicas: with overlap a bucket starts the moment its last parameter is
// final (and every earlier bucket has started), late buckets only in Finish;
// the result is the sum either way.
void RunTwoReplicas(bool overlap, std::vector<std::string>* log_of_rank0,
                    std::vector<std::vector<float>>* grads_of_rank0) {
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) -> absl::Status {
                auto params = MakeParams({7, 150, 100, 300, 20});
                ParameterList list = ListOf(params);
                // p0 (the first used: an embedding) is late.
                auto reducer = GradientReducer::Create(
                    list, {list[0]}, &world, {.bucket_mb = kBucketMb, .overlap = overlap});
                if (!reducer.ok()) return reducer.status();
                std::vector<std::string> log;
                (*reducer)->set_event_log(&log);
                FillGradients(params, rank);
                // Backward: the last layers' gradients are final first.
                for (int i = static_cast<int>(list.size()) - 1; i >= 0; --i)
                  (*reducer)->MarkFinal({list[i]});
                if (absl::Status s = (*reducer)->Finish(); !s.ok()) return s;
                if (rank == 0) {
                  *log_of_rank0 = log;
                  for (auto& p : params) grads_of_rank0->push_back(p->grad.ToVector<float>());
                }
                return absl::OkStatus();
              }).ok());
}

// Runs RunTwoReplicas and expects rank 0's event log and the summed
// gradients (rank r's element i is r + 1 + i: the sum is 3 + 2 i).
void ExpectLogAndSums(bool overlap, const std::vector<std::string>& expected_log) {
  std::vector<std::string> log;
  std::vector<std::vector<float>> grads;
  RunTwoReplicas(overlap, &log, &grads);
  EXPECT_EQ(log, expected_log);
  ASSERT_EQ(grads.size(), 5u);
  for (const auto& g : grads) {
    for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], 3.0f + 2 * i);
  }
}

TEST(GradientReducer, OverlapStartsEachBucketWhenItsLastGradientIsFinal) {
  // Buckets: {p4, p3} is 320 > 256, so [p4], [p3], [p2, p1], late [p0].
  ExpectLogAndSums(/*overlap=*/true, {"final p4", "start 0", "final p3", "start 1", "final p2",
                                      "final p1", "start 2", "finish", "start 3"});
}

TEST(GradientReducer, WithoutOverlapEveryBucketStartsAfterTheBackward) {
  ExpectLogAndSums(/*overlap=*/false, {"final p4", "final p3", "final p2", "final p1", "finish",
                                       "start 0", "start 1", "start 2", "start 3"});
}

// A tensor-parallel stage as the reducer sees it, in order of use: a
// replicated LayerNorm weight "ln" (1-D), a split weight "w" (2-D, shard
// `tp_rank` of 2 along dim 0), a replicated position embedding "wpe" (2-D)
// and a replicated bias "bias" (1-D).
std::vector<std::unique_ptr<Parameter>> TensorParallelParams(int tp_rank) {
  auto params = MakeParams({48, 64, 32, 16});
  params[0]->name = "ln";
  params[1]->name = "w";
  params[2]->name = "wpe";
  params[3]->name = "bias";
  params[1]->grad = Tensor::Zeros({8, 8}, DType::kFloat32);
  params[1]->value = Tensor::Zeros({8, 8}, DType::kFloat32);
  params[1]->layout = {
      .global_shape = {16, 8}, .split_dim = 0, .num_shards = 2, .shard_index = tp_rank};
  params[2]->grad = Tensor::Zeros({4, 8}, DType::kFloat32);
  params[2]->value = Tensor::Zeros({4, 8}, DType::kFloat32);
  for (int i : {0, 2, 3}) params[i]->layout.global_shape = params[i]->grad.shape();
  return params;
}

TEST(GradientReducer, CompressedBucketsNeverMixTpSplitAndReplicatedParameters) {
  auto params = TensorParallelParams(/*tp_rank=*/0);
  const ParameterList list = ListOf(params);
  // 1 KiB buckets (256 floats) hold all 160 elements: uncompressed, one
  // bucket, as before; compressed, the split "w" alone, and the replicated
  // ones in a bucket numbered by when it is ready (after "ln", the last used
  // backwards, after "w").
  auto none = GradientReducer::Create(list, {}, nullptr, {.bucket_mb = kBucketMb});
  ASSERT_TRUE(none.ok()) << none.status();
  ASSERT_EQ((*none)->buckets().size(), 1u);
  EXPECT_EQ(Names((*none)->buckets()[0]), (std::vector<std::string>{"bias", "wpe", "w", "ln"}));
  auto int8 = GradientReducer::Create(
      list, {}, nullptr,
      {.bucket_mb = kBucketMb, .sync = {.compression = GradientCompression::kInt8}});
  ASSERT_TRUE(int8.ok()) << int8.status();
  const auto& buckets = (*int8)->buckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(Names(buckets[0]), (std::vector<std::string>{"w"}));
  EXPECT_EQ(Names(buckets[1]), (std::vector<std::string>{"bias", "wpe", "ln"}));
  // A 48-element capacity (192 bytes): "bias" + "wpe" fill one bucket, ready
  // before "w", and "ln" another, ready after it.
  auto small = GradientReducer::Create(
      list, {}, nullptr,
      {.bucket_mb = 192.0 / (1 << 20), .sync = {.compression = GradientCompression::kTopK}});
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_EQ((*small)->buckets().size(), 3u);
  EXPECT_EQ(Names((*small)->buckets()[0]), (std::vector<std::string>{"bias", "wpe"}));
  EXPECT_EQ(Names((*small)->buckets()[1]), (std::vector<std::string>{"w"}));
  EXPECT_EQ(Names((*small)->buckets()[2]), (std::vector<std::string>{"ln"}));
}

// (step, world rank) -> the replicated parameters' summed gradients, in order.
using ReplicatedSums = std::map<std::pair<int, int>, std::vector<float>>;

// World rank `rank` of a tp 2 x dp 2 grid (tp rank = rank % 2, dp group
// {tp, tp + 2}): `steps` sums of TensorParallelParams's gradients with `sync`.
// The replicated gradients are the same on both tp ranks; the split one's are
// as small on tp rank 1 and 1e9 times larger on tp rank 0 (up to 5e4, below
// fp16's largest), as far apart as a compressor's per-bucket decisions (fp16's
// dynamic scale, int8's block scales, Top-K's picks, the adaptive K) can be
// pushed.
absl::Status SumOnTensorParallelRank(int rank, comm::Communicator& world,
                                     const GradientSyncOptions& sync, int steps, absl::Mutex& mu,
                                     ReplicatedSums& sums) {
  const int tp = rank % 2;
  const int dp = rank / 2;
  const std::vector<int> members = {tp, tp + 2};
  absl::StatusOr<std::unique_ptr<comm::Communicator>> group =
      world.CreateGroup(members, absl::StrCat("dp", tp));
  if (!group.ok()) return group.status();
  auto params = TensorParallelParams(tp);
  const ParameterList list = ListOf(params);
  auto reducer =
      GradientReducer::Create(list, {}, group->get(), {.bucket_mb = kBucketMb, .sync = sync});
  if (!reducer.ok()) return reducer.status();
  for (int step = 0; step < steps; ++step) {
    (*reducer)->BeginStep();
    for (Parameter* p : list) {
      const bool large = !p->layout.replicated() && tp == 0;
      float* g = p->grad.data<float>();
      for (int64_t i = 0; i < p->grad.numel(); ++i) {
        const float base = static_cast<float>(((i * 7 + step * 3 + dp * 5) % 11) - 5) * 1e-5f;
        g[i] = large ? base * 1e9f : base;
      }
    }
    for (int i = static_cast<int>(list.size()) - 1; i >= 0; --i) (*reducer)->MarkFinal({list[i]});
    if (absl::Status s = (*reducer)->Finish(); !s.ok()) return s;
    std::vector<float> replicated;
    for (Parameter* p : list) {
      if (!p->layout.replicated()) continue;
      for (float v : p->grad.ToVector<float>()) replicated.push_back(v);
    }
    absl::MutexLock lock(&mu);
    sums[{step, rank}] = std::move(replicated);
  }
  return absl::OkStatus();
}

// Three steps of every compression mode on that grid: the replicated sums are
// bitwise equal across tp.
TEST(GradientReducer, CompressedSumsOfReplicatedGradientsAgreeAcrossTpRanks) {
  struct Mode {
    std::string name;
    GradientSyncOptions sync;
  };
  const std::vector<Mode> modes = {
      {"bf16", {.compression = GradientCompression::kBf16}},
      {"fp16", {.compression = GradientCompression::kFp16}},
      {"int8", {.compression = GradientCompression::kInt8}},
      {"topk", {.compression = GradientCompression::kTopK, .topk_ratio = 0.25}},
      {"topk adaptive",
       {.compression = GradientCompression::kTopK, .topk_ratio = 0.25, .topk_adaptive = true}},
      {"powersgd", {.compression = GradientCompression::kPowerSgd, .powersgd_rank = 1}},
  };
  constexpr int kSteps = 3;
  for (const Mode& mode : modes) {
    absl::Mutex mu;
    ReplicatedSums sums;
    const absl::Status run = comm::RunLocalRanks(4, [&](int rank, comm::Communicator& world) {
      return SumOnTensorParallelRank(rank, world, mode.sync, kSteps, mu, sums);
    });
    ASSERT_TRUE(run.ok()) << mode.name << ": " << run;
    for (int step = 0; step < kSteps; ++step) {
      for (int dp = 0; dp < 2; ++dp) {
        const std::vector<float>& tp0 = sums.at({step, 2 * dp});
        const std::vector<float>& tp1 = sums.at({step, 2 * dp + 1});
        ASSERT_EQ(tp0.size(), tp1.size());
        int differ = 0;
        for (size_t i = 0; i < tp0.size(); ++i) {
          differ += std::memcmp(&tp0[i], &tp1[i], sizeof(float)) != 0;
        }
        EXPECT_EQ(differ, 0) << mode.name << ", step " << step + 1 << ", dp rank " << dp << ": "
                             << differ << " of " << tp0.size()
                             << " replicated gradient elements differ across tp ranks";
      }
    }
  }
}

// ZeRO stage 1 on two replicas: each element of every parameter is owned by
// exactly one replica, its window of the reduce-scattered shard holds the
// sum, and GatherParameters gives every replica the owners' values.
TEST(GradientReducer, ZeroStage1ShardsEveryElementOnceAndGathersValues) {
  absl::Mutex mu;
  std::map<std::string, std::vector<int>> owners;  // Per parameter element.
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) -> absl::Status {
                const ExecContext ctx = ExecContext::Cpu();
                auto params = MakeParams({7, 150, 100, 301, 20});
                ParameterList list = ListOf(params);
                auto reducer = GradientReducer::Create(list, {list[0]}, &world,
                                                       {.bucket_mb = kBucketMb, .zero_stage = 1});
                if (!reducer.ok()) return reducer.status();
                if ((*reducer)->zero_stage() != 1) return absl::InternalError("not sharded");
                FillGradients(params, rank);
                for (int i = static_cast<int>(list.size()) - 1; i >= 0; --i)
                  (*reducer)->MarkFinal({list[i]});
                if (absl::Status st = (*reducer)->Finish(); !st.ok()) return st;
                int64_t owned = 0;
                for (const OwnedWindow& w : (*reducer)->owned_windows()) {
                  const std::vector<float> g = w.grad.ToVector<float>();
                  for (int64_t i = 0; i < w.length; ++i) {
                    if (g[i] != 3.0f + 2 * (w.offset + i)) return absl::InternalError("wrong sum");
                  }
                  // The owner writes its rank into the values it owns.
                  ops::Fill(ctx, w.param->value.Flatten().Slice(0, w.offset, w.length),
                            static_cast<float>(rank + 1));
                  owned += w.length;
                  absl::MutexLock lock(&mu);
                  std::vector<int>& o = owners[w.param->name];
                  o.resize(w.param->value.numel(), 0);
                  for (int64_t i = 0; i < w.length; ++i) o[w.offset + i] += rank + 1;
                }
                // Half of the padded buckets: 7+1 | 20 | 301+1 | 250+0, one window of each.
                if (owned * 2 > 8 + 20 + 302 + 250) return absl::InternalError("owns too much");
                if (absl::Status st = (*reducer)->GatherParameters(ctx); !st.ok()) return st;
                absl::MutexLock lock(&mu);
                for (auto& p : params) {
                  const std::vector<float> v = p->value.ToVector<float>();
                  // Both ranks recorded their windows before the all-gather could end.
                  const std::vector<int>& o = owners[p->name];
                  for (size_t i = 0; i < v.size(); ++i) {
                    if (i >= o.size() || v[i] != static_cast<float>(o[i])) {
                      return absl::InternalError(
                          absl::StrCat(p->name, "[", i, "] is not its owner's value"));
                    }
                  }
                }
                return absl::OkStatus();
              }).ok());
  int64_t elements = 0;
  for (const auto& [name, o] : owners) {
    for (size_t i = 0; i < o.size(); ++i) {
      // 1 or 2: exactly one owner (3 would be both, 0 none).
      EXPECT_TRUE(o[i] == 1 || o[i] == 2) << name << "[" << i << "] owners " << o[i];
    }
    elements += static_cast<int64_t>(o.size());
  }
  EXPECT_EQ(elements, 7 + 150 + 100 + 301 + 20);
}

// ZeRO stage 2 on two replicas, three micro-batches: each micro-batch's
// buckets are bound to a pool buffer when a layer starts writing them and
// reduce-scattered when done; the shards accumulate the sum, and the rank
// holds two pool buffers and the shards instead of every bucket.
TEST(GradientReducer, ZeroStage2AccumulatesMicroBatchesInShardsFromAPool) {
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) -> absl::Status {
                const ExecContext ctx = ExecContext::Cpu();
                // 20 parameters of 100: 10 buckets of 200 elements (1 KiB holds 256).
                auto params = MakeParams(std::vector<int64_t>(20, 100));
                ParameterList list = ListOf(params);
                auto reducer = GradientReducer::Create(
                    list, {}, &world, {.bucket_mb = kBucketMb, .zero_stage = 2, .ctx = &ctx});
                if (!reducer.ok()) return reducer.status();
                constexpr int kMicroBatches = 3;
                for (int mb = 0; mb < kMicroBatches; ++mb) {
                  for (int i = 19; i >= 0; --i) {
                    (*reducer)->LayerStarting({list[i]});
                    float* g = list[i]->grad.data<float>();
                    for (int64_t j = 0; j < 100; ++j) g[j] += static_cast<float>(rank + 1 + j);
                    (*reducer)->LayerDone({list[i]});
                  }
                }
                if (absl::Status st = (*reducer)->Finish(); !st.ok()) return st;
                int64_t owned = 0;
                for (const OwnedWindow& w : (*reducer)->owned_windows()) {
                  const std::vector<float> g = w.grad.ToVector<float>();
                  for (int64_t i = 0; i < w.length; ++i) {
                    if (g[i] != kMicroBatches * (3.0f + 2 * (w.offset + i))) {
                      return absl::InternalError(
                          absl::StrCat(w.param->name, "[", w.offset + i, "] is ", g[i]));
                    }
                  }
                  owned += w.length;
                }
                if (owned != 1000)
                  return absl::InternalError(absl::StrCat("owns ", owned, " elements"));
                // Two 200-element pool buffers and 10 shards of 100, against stage 1's
                // 10 buckets of 200 plus the shards.
                if ((*reducer)->gradient_bytes() != (2 * 200 + 10 * 100) * 4) {
                  return absl::InternalError(
                      absl::StrCat("holds ", (*reducer)->gradient_bytes(), " bytes"));
                }
                return absl::OkStatus();
              }).ok());
}

// ZeRO stage 1 reduce-scatters each bucket in place (Megatron's distributed
// optimizer): a bucket's shard is the owned window of its own buffer, so the
// rank holds exactly stage 0's gradient bytes; the post-step all-gather of
// the values leaves the reduced windows intact, and GatherGradients then
// gives every replica the full sums.
TEST(GradientReducer, ZeroStage1ReducesInPlaceAndKeepsTheGradientsThroughTheGather) {
  const std::vector<int64_t> sizes = {7, 150, 100, 301, 20};
  for (const int dp : {2, 4}) {
    SCOPED_TRACE(absl::StrCat("dp=", dp));
    ASSERT_TRUE(
        comm::RunLocalRanks(dp, [&](int rank, comm::Communicator& world) -> absl::Status {
          const ExecContext ctx = ExecContext::Cpu();
          auto unsharded_params = MakeParams(sizes);
          auto unsharded = GradientReducer::Create(ListOf(unsharded_params), {}, &world,
                                                   {.bucket_mb = kBucketMb, .zero_stage = 0});
          if (!unsharded.ok()) return unsharded.status();
          auto params = MakeParams(sizes);
          ParameterList list = ListOf(params);
          auto reducer = GradientReducer::Create(list, {}, &world,
                                                 {.bucket_mb = kBucketMb, .zero_stage = 1});
          if (!reducer.ok()) return reducer.status();
          if ((*reducer)->gradient_bytes() != (*unsharded)->gradient_bytes()) {
            return absl::InternalError(absl::StrCat("stage 1 holds ", (*reducer)->gradient_bytes(),
                                                    " gradient bytes, stage 0 ",
                                                    (*unsharded)->gradient_bytes()));
          }
          for (const GradientBucket& b : (*reducer)->buckets()) {
            const int64_t shard = b.shard.numel();
            if (static_cast<const char*>(b.shard.raw_data()) !=
                static_cast<const char*>(b.buffer.raw_data()) + rank * shard * sizeof(float)) {
              return absl::InternalError("a shard is not its bucket's owned window");
            }
          }
          FillGradients(params, rank);
          for (int i = static_cast<int>(list.size()) - 1; i >= 0; --i)
            (*reducer)->MarkFinal({list[i]});
          if (absl::Status st = (*reducer)->Finish(); !st.ok()) return st;
          const float ranks_sum = dp * (dp + 1) / 2.0f;  // sum of rank + 1
          for (const OwnedWindow& w : (*reducer)->owned_windows()) {
            const std::vector<float> g = w.grad.ToVector<float>();
            for (int64_t i = 0; i < w.length; ++i) {
              if (g[i] != ranks_sum + dp * static_cast<float>(w.offset + i)) {
                return absl::InternalError(absl::StrCat(w.param->name, " window: wrong sum"));
              }
            }
          }
          if (absl::Status st = (*reducer)->GatherParameters(ctx); !st.ok()) return st;
          if (absl::Status st = (*reducer)->GatherGradients(); !st.ok()) return st;
          for (const auto& p : params) {
            const std::vector<float> g = p->grad.ToVector<float>();
            for (size_t i = 0; i < g.size(); ++i) {
              if (g[i] != ranks_sum + dp * static_cast<float>(i)) {
                return absl::InternalError(absl::StrCat(p->name, "[", i, "] is ", g[i]));
              }
            }
          }
          return absl::OkStatus();
        }).ok());
  }
}

// ZeRO stage 2 with the model's layers: a bucket holds whole layers (packed
// up to the capacity, never split), a parameter of two layers (p0, as a tied
// embedding is written by the head's and the embedding's passes) keeps a full
// buffer, and the pool is exactly kGradientPoolBuffers buffers of the largest
// pooled bucket, over three micro-batches whose sums accumulate in the shards.
TEST(GradientReducer, ZeroStage2BucketsHoldWholeLayersAndAPoolOfTwo) {
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& world) -> absl::Status {
                const ExecContext ctx = ExecContext::Cpu();
                // p0 64 (shared), p1 30 | 6 layers of 3 x 40 | head p20 8 (+ p0).
                std::vector<int64_t> sizes = {64, 30};
                for (int i = 0; i < 18; ++i) sizes.push_back(40);
                sizes.push_back(8);
                auto params = MakeParams(sizes);
                ParameterList list = ListOf(params);
                std::vector<ParameterList> layers = {{list[0], list[1]}};
                for (int l = 0; l < 6; ++l) {
                  layers.push_back({list[2 + 3 * l], list[3 + 3 * l], list[4 + 3 * l]});
                }
                layers.push_back({list[20], list[0]});
                auto reducer = GradientReducer::Create(
                    list, {}, &world,
                    {.bucket_mb = kBucketMb, .zero_stage = 2, .ctx = &ctx, .layers = layers});
                if (!reducer.ok()) return reducer.status();
                std::map<const Parameter*, int> bucket_of;
                int64_t shards = 0, full = 0, largest_pooled = 0;
                const std::vector<GradientBucket>& buckets = (*reducer)->buckets();
                for (int k = 0; k < static_cast<int>(buckets.size()); ++k) {
                  const GradientBucket& b = buckets[k];
                  for (const Parameter* p : b.params) bucket_of[p] = k;
                  if (b.pooled) {
                    shards += b.shard.numel();
                    largest_pooled = std::max(largest_pooled, b.shard.numel() * 2);
                  } else {
                    full += b.buffer.numel();
                  }
                }
                if (buckets[bucket_of[list[0]]].pooled) {
                  return absl::InternalError("the parameter of two layers is pooled");
                }
                for (const ParameterList& layer : layers) {
                  for (const Parameter* p : layer) {
                    if (p != list[0] && bucket_of[p] != bucket_of[layer.back() == list[0]
                                                                    ? layer.front()
                                                                    : layer.back()]) {
                      return absl::InternalError(absl::StrCat(p->name, "'s layer is split"));
                    }
                  }
                }
                // 256 floats a bucket: (head 8 + 2 layers of 120) per bucket.
                if (largest_pooled != 248) {
                  return absl::InternalError(absl::StrCat("largest bucket ", largest_pooled));
                }
                constexpr int kMicroBatches = 3;
                for (int mb = 0; mb < kMicroBatches; ++mb) {
                  for (int l = static_cast<int>(layers.size()) - 1; l >= 0; --l) {
                    (*reducer)->LayerStarting(layers[l]);
                    for (Parameter* p : layers[l]) {
                      float* g = p->grad.data<float>();
                      // p0's two layers add half each.
                      const float part = p == list[0] ? 0.5f : 1.0f;
                      for (int64_t j = 0; j < p->grad.numel(); ++j) {
                        g[j] += part * static_cast<float>(rank + 1 + j);
                      }
                    }
                    (*reducer)->LayerDone(layers[l]);
                  }
                }
                if (absl::Status st = (*reducer)->Finish(); !st.ok()) return st;
                for (const OwnedWindow& w : (*reducer)->owned_windows()) {
                  const std::vector<float> g = w.grad.ToVector<float>();
                  for (int64_t i = 0; i < w.length; ++i) {
                    if (g[i] != kMicroBatches * (3.0f + 2 * (w.offset + i))) {
                      return absl::InternalError(
                          absl::StrCat(w.param->name, "[", w.offset + i, "] is ", g[i]));
                    }
                  }
                }
                const int64_t want = 4 * (shards + full + kGradientPoolBuffers * largest_pooled);
                if ((*reducer)->gradient_bytes() != want) {
                  return absl::InternalError(absl::StrCat(
                      "holds ", (*reducer)->gradient_bytes(), " gradient bytes, want ", want));
                }
                return absl::OkStatus();
              }).ok());
}

// ZeRO stage 3 on 2 and 4 replicas: after ShardParameters a rank holds only
// its window of every bucket's values (1 / dp, to the padding), the
// parameters none; a layer's Need gathers its buckets (its values are the
// owners' windows, including what the optimizer wrote there), Prefetch starts
// the next layer's gather ahead, and Done frees a bucket no layer uses.
TEST(GradientReducer, ZeroStage3KeepsAWindowOfTheValuesAndGathersPerLayer) {
  for (int dp : {2, 4}) {
    SCOPED_TRACE(::testing::Message() << "dp " << dp);
    ASSERT_TRUE(comm::RunLocalRanks(dp, [&](int, comm::Communicator& world) -> absl::Status {
      const ExecContext ctx = ExecContext::Cpu();
      // 10 layers of 2 parameters (130 + 70): buckets of 256 straddle layers.
      std::vector<int64_t> sizes;
      for (int l = 0; l < 10; ++l) sizes.insert(sizes.end(), {130, 70});
      auto params = MakeParams(sizes);
      ParameterList list = ListOf(params);
      for (size_t k = 0; k < params.size(); ++k) {
        float* v = params[k]->value.data<float>();
        for (int64_t i = 0; i < params[k]->value.numel(); ++i) v[i] = 1000.0f * k + i;
      }
      auto made = GradientReducer::Create(list, {}, &world,
                                          {.bucket_mb = kBucketMb, .zero_stage = 3, .ctx = &ctx});
      if (!made.ok()) return made.status();
      GradientReducer& reducer = **made;
      std::vector<std::string> log;
      reducer.set_event_log(&log);
      if (absl::Status st = reducer.ShardParameters(); !st.ok()) return st;
      int64_t padded = 0;
      for (const GradientBucket& b : reducer.buckets()) padded += b.value_shard.numel() * dp;
      const int64_t total = 2000;
      // Nothing but the windows: the parameters' tensors are gone.
      for (const Parameter* p : list) {
        if (p->value.defined()) return absl::InternalError(p->name + " still holds its value");
      }
      if (reducer.parameter_bytes() * dp != padded * 4 || padded - total >= dp * 
              static_cast<int64_t>(reducer.buckets().size())) {
        return absl::InternalError(absl::StrCat("holds ", reducer.parameter_bytes(), " bytes"));
      }
      // The optimizer's view: each owned window's values; add 1.
      for (const OwnedWindow& w : reducer.owned_windows()) {
        std::vector<float> v = w.value.ToVector<float>();
        for (float& x : v) x += 1.0f;
        w.value.CopyFrom(v);
      }
      // A forward: layer l needed, l + 1 prefetched, l done.
      const auto layer = [&](int l) { return ParameterList{list[2 * l], list[2 * l + 1]}; };
      int most = 0;
      for (int l = 0; l < 10; ++l) {
        if (absl::Status st = reducer.NeedParameters(layer(l)); !st.ok()) return st;
        if (l + 1 < 10) reducer.PrefetchParameters(layer(l + 1));
        most = std::max(most, reducer.gathered_buckets());
        for (Parameter* p : layer(l)) {
          const std::vector<float> v = p->value.ToVector<float>();
          const int64_t k = std::find(list.begin(), list.end(), p) - list.begin();
          for (size_t i = 0; i < v.size(); ++i) {
            if (v[i] != 1000.0f * k + i + 1) {
              return absl::InternalError(absl::StrCat(p->name, "[", i, "] = ", v[i]));
            }
          }
        }
        reducer.DoneWithParameters(layer(l));
      }
      if (reducer.gathered_buckets() != 0 || reducer.parameter_bytes() * dp != padded * 4) {
        return absl::InternalError("values still gathered after the last Done");
      }
      for (const Parameter* p : list) {
        if (p->value.defined()) return absl::InternalError(p->name + " kept its gathered value");
      }
      // Each bucket gathered once (a bucket straddling two layers stays), at
      // most the current layer's and the next one's at a time.
      int gathers = 0;
      for (const std::string& e : log) gathers += absl::StartsWith(e, "gather ");
      if (gathers != static_cast<int>(reducer.buckets().size()) || most > 4 || most < 2) {
        return absl::InternalError(absl::StrCat(gathers, " gathers, ", most, " at once"));
      }
      return absl::OkStatus();
    }).ok());
  }
}

// Mixed precision: with value_dtype bf16 the shards, the all-gathers and the
// gathered values are bf16 (2 bytes an element: half the fp32 gather's
// bytes), and values round-trip exactly (they are bf16 numbers already).
TEST(GradientReducer, ZeroStage3ShardsAndGathersSixteenBitValues) {
  constexpr int kDp = 2;
  ASSERT_TRUE(comm::RunLocalRanks(kDp, [&](int, comm::Communicator& world) -> absl::Status {
    const ExecContext ctx = ExecContext::Cpu();
    auto params = MakeParams({130, 70, 130, 70});
    ParameterList list = ListOf(params);
    for (size_t k = 0; k < params.size(); ++k) {
      float* v = params[k]->value.data<float>();
      // Integers below 256: exact in bf16.
      for (int64_t i = 0; i < params[k]->value.numel(); ++i) v[i] = 64.0f * k + i % 64;
      const Tensor half = Tensor::Empty(params[k]->value.shape(), DType::kBFloat16);
      ops::Copy(ctx, params[k]->value, half);
      params[k]->value = half;
    }
    auto made = GradientReducer::Create(
        list, {}, &world,
        {.bucket_mb = kBucketMb, .zero_stage = 3, .ctx = &ctx, .value_dtype = DType::kBFloat16});
    if (!made.ok()) return made.status();
    GradientReducer& reducer = **made;
    if (absl::Status st = reducer.ShardParameters(); !st.ok()) return st;
    int64_t padded = 0;
    for (const GradientBucket& b : reducer.buckets()) {
      if (b.value_shard.dtype() != DType::kBFloat16) return absl::InternalError("fp32 shard");
      padded += b.value_shard.numel() * kDp;
    }
    for (const OwnedWindow& w : reducer.owned_windows()) {
      if (w.value.dtype() != DType::kBFloat16) return absl::InternalError("fp32 window");
    }
    if (reducer.parameter_bytes() * kDp != padded * 2) {
      return absl::InternalError(absl::StrCat("holds ", reducer.parameter_bytes(), " bytes"));
    }
    world.ResetStats();
    if (absl::Status st = reducer.GatherAllParameters(); !st.ok()) return st;
    if (world.stats().bytes_of(comm::CommOp::kAllGather) != padded * 2) {
      return absl::InternalError(absl::StrCat(
          "gathered ", world.stats().bytes_of(comm::CommOp::kAllGather), " bytes, want ",
          padded * 2));
    }
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor& value = params[k]->value;
      if (value.dtype() != DType::kBFloat16) return absl::InternalError("fp32 gathered value");
      const Tensor wide = Tensor::Empty(value.shape(), DType::kFloat32);
      ops::Copy(ctx, value, wide);
      const std::vector<float> v = wide.ToVector<float>();
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] != 64.0f * k + i % 64) {
          return absl::InternalError(absl::StrCat(params[k]->name, "[", i, "] = ", v[i]));
        }
      }
    }
    reducer.ReleaseAllParameters();
    return absl::OkStatus();
  }).ok());
}

// Values of another dtype than the shards' would be rounded or widened
// silently: ShardParameters refuses them, naming the parameter; a non-float
// value_dtype is refused at Create.
TEST(GradientReducer, ZeroStage3RefusesValuesOfAnotherDtype) {
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int, comm::Communicator& world) -> absl::Status {
    const ExecContext ctx = ExecContext::Cpu();
    auto params = MakeParams({8, 8});
    auto made = GradientReducer::Create(
        ListOf(params), {}, &world,
        {.bucket_mb = kBucketMb, .zero_stage = 3, .ctx = &ctx, .value_dtype = DType::kFloat16});
    if (!made.ok()) return made.status();
    const absl::Status st = (*made)->ShardParameters();
    if (st.code() != absl::StatusCode::kFailedPrecondition ||
        !absl::StrContains(st.message(), "' has fp32 values but the ZeRO 3 value shards are "
                                         "fp16")) {
      return absl::InternalError(absl::StrCat("got: ", st.ToString()));
    }
    auto bad = GradientReducer::Create(
        ListOf(params), {}, &world,
        {.bucket_mb = kBucketMb, .zero_stage = 3, .ctx = &ctx, .value_dtype = DType::kInt32});
    if (bad.ok() || !absl::StrContains(bad.status().message(), "value_dtype=int32")) {
      return absl::InternalError(absl::StrCat("got: ", bad.status().ToString()));
    }
    return absl::OkStatus();
  }).ok());
}

}  // namespace
}  // namespace trident::data_parallel
