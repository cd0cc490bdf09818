#include "core/thread_pool.h"

#include <algorithm>

#include "core/check.h"

namespace trident {
namespace {

// True on a thread that is running a chunk of some ParallelFor (a worker, or a
// caller inside its own chunk): nested calls then run inline.
thread_local bool in_parallel_region = false;

class RegionGuard {
 public:
  RegionGuard() : previous_(in_parallel_region) { in_parallel_region = true; }
  ~RegionGuard() { in_parallel_region = previous_; }

 private:
  bool previous_;
};

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(num_threads) {
  TRIDENT_CHECK_GE(num_threads, 1) << "a thread pool needs at least the calling thread";
  workers_.reserve(num_threads - 1);
  for (int w = 1; w < num_threads; ++w) {
    workers_.emplace_back([this, w] { WorkerLoop(w); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::ParallelFor(int64_t n, int64_t min_chunk,
                             absl::FunctionRef<void(int64_t, int64_t)> fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(min_chunk, 1);
  const int chunks =
      static_cast<int>(std::min<int64_t>(num_threads_, std::max<int64_t>(1, n / min_chunk)));
  if (chunks == 1 || in_parallel_region) {
    RegionGuard guard;
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_fn_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_ = chunks - 1;
    ++generation_;
  }
  work_cv_.notify_all();
  {
    RegionGuard guard;
    fn(0, ChunkBegin(n, chunks, 1));
  }
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_fn_ = nullptr;
}

void ThreadPool::WorkerLoop(int worker_index) {
  in_parallel_region = true;
  uint64_t seen = 0;
  while (true) {
    const absl::FunctionRef<void(int64_t, int64_t)>* fn;
    int64_t n;
    int chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = job_fn_;
      n = job_n_;
      chunks = job_chunks_;
    }
    if (worker_index >= chunks) continue;  // This job needs fewer threads.
    (*fn)(ChunkBegin(n, chunks, worker_index), ChunkBegin(n, chunks, worker_index + 1));
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last = --pending_ == 0;
    }
    if (last) done_cv_.notify_one();
  }
}

}  // namespace trident
