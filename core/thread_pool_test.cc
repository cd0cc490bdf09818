#include "core/thread_pool.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace trident {
namespace {

TEST(ThreadPoolTest, CoversRangeWithDisjointChunksOnSeveralThreads) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.num_threads(), 4);
  std::vector<std::atomic<int>> hits(10007);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.ParallelFor(10007, 100, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    threads.insert(std::this_thread::get_id());
    chunks.emplace_back(b, e);
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_EQ(chunks.size(), 4u);
  EXPECT_EQ(threads.size(), 4u);
}

TEST(ThreadPoolTest, SmallRangesRunInlineAsOneChunk) {
  ThreadPool pool(4);
  int calls = 0;
  std::thread::id id;
  pool.ParallelFor(50, 100, [&](int64_t b, int64_t e) {
    ++calls;
    id = std::this_thread::get_id();
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 50);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(id, std::this_thread::get_id());
  pool.ParallelFor(0, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPoolTest, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.ParallelFor(2, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      pool.ParallelFor(100, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
    }
  });
  EXPECT_EQ(total.load(), 200);
}

TEST(ThreadPoolTest, ManyJobsFromSeveralCallerThreads) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&] {
      for (int job = 0; job < 200; ++job) {
        pool.ParallelFor(300, 1, [&](int64_t b, int64_t e) { total += e - b; });
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(total.load(), 3 * 200 * 300);
}

TEST(ThreadPoolTest, ChunkBoundariesAreAFunctionOfTheirArguments) {
  EXPECT_EQ(ChunkBegin(10, 3, 0), 0);
  EXPECT_EQ(ChunkBegin(10, 3, 1), 3);
  EXPECT_EQ(ChunkBegin(10, 3, 2), 6);
  EXPECT_EQ(ChunkBegin(10, 3, 3), 10);
}

}  // namespace
}  // namespace trident
