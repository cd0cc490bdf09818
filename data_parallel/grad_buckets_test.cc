#include "data_parallel/grad_buckets.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/local/local_world.h"
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
                for (auto& p : params) {
                  float* g = p->grad.data<float>();
                  for (int64_t i = 0; i < p->grad.numel(); ++i)
                    g[i] = static_cast<float>(rank + 1 + i);
                }
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

TEST(GradientReducer, OverlapStartsEachBucketWhenItsLastGradientIsFinal) {
  std::vector<std::string> log;
  std::vector<std::vector<float>> grads;
  RunTwoReplicas(/*overlap=*/true, &log, &grads);
  // Buckets: {p4, p3} is 320 > 256, so [p4], [p3], [p2, p1], late [p0].
  EXPECT_EQ(log, (std::vector<std::string>{"final p4", "start 0", "final p3", "start 1", "final p2",
                                           "final p1", "start 2", "finish", "start 3"}));
  for (const auto& g : grads) {
    for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], 3.0f + 2 * i);
  }
}

TEST(GradientReducer, WithoutOverlapEveryBucketStartsAfterTheBackward) {
  std::vector<std::string> log;
  std::vector<std::vector<float>> grads;
  RunTwoReplicas(/*overlap=*/false, &log, &grads);
  EXPECT_EQ(log, (std::vector<std::string>{"final p4", "final p3", "final p2", "final p1", "finish",
                                           "start 0", "start 1", "start 2", "start 3"}));
  for (const auto& g : grads) {
    for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], 3.0f + 2 * i);
  }
}

}  // namespace
}  // namespace trident::data_parallel
