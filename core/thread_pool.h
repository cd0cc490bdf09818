#ifndef TRIDENT_CORE_THREAD_POOL_H_
#define TRIDENT_CORE_THREAD_POOL_H_

// A small fork-join pool for CPU kernels. One pool belongs to one execution
// context (one rank); ParallelFor splits a range into as many contiguous chunks
// as it has threads (the calling thread runs the first chunk) and returns when
// all are done.
//
// Chunk boundaries depend only on (n, min_chunk, num_threads), never on timing,
// so a kernel that reduces within chunks is deterministic for a given thread
// count; kernels that must be independent of the thread count too (the reductions
// in core/ops/cpu) choose their own fixed blocks and use ParallelFor only to
// distribute them.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"

namespace trident {

class ThreadPool {
 public:
  // `num_threads` >= 1 counts the caller: the pool starts num_threads - 1 workers.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at least
  // `min_chunk` long (except when n itself is shorter), using at most
  // num_threads() threads. Runs inline when one chunk suffices or when called
  // from inside another ParallelFor of any pool (no nested fan-out). Calls from
  // several threads at once are serialised.
  void ParallelFor(int64_t n, int64_t min_chunk, absl::FunctionRef<void(int64_t, int64_t)> fn);

 private:
  void WorkerLoop(int worker_index);

  const int num_threads_;
  std::vector<std::thread> workers_;

  std::mutex submit_mu_;  // One job at a time.
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  // The current job, guarded by mu_.
  uint64_t generation_ = 0;
  bool stop_ = false;
  const absl::FunctionRef<void(int64_t, int64_t)>* job_fn_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int pending_ = 0;
};

// Chunk c of `chunks` equal parts of [0, n): the half-open range ParallelFor
// gives that chunk.
inline int64_t ChunkBegin(int64_t n, int chunks, int c) { return n * c / chunks; }

}  // namespace trident

#endif  // TRIDENT_CORE_THREAD_POOL_H_
