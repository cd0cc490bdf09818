#include "core/comm/local/progress_pool.h"

#include <algorithm>
#include <thread>
#include <utility>

namespace trident::comm::local_internal {

ProgressPool& ProgressPool::Get() {
  static ProgressPool* const pool = [] {
    const int hardware = static_cast<int>(std::thread::hardware_concurrency());
    return new ProgressPool(std::clamp(hardware, 1, 16));
  }();
  return *pool;
}

ProgressPool::ProgressPool(int num_threads) : num_threads_(num_threads) {
  for (int i = 0; i < num_threads_; ++i) {
    std::thread([this] { Loop(); }).detach();
  }
}

void ProgressPool::Submit(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(work));
}

void ProgressPool::Loop() {
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](std::deque<std::function<void()>>* q) { return !q->empty(); }, &queue_));
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace trident::comm::local_internal
