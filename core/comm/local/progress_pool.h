#ifndef TRIDENT_CORE_COMM_LOCAL_PROGRESS_POOL_H_
#define TRIDENT_CORE_COMM_LOCAL_PROGRESS_POOL_H_

// A few process-wide threads that advance large local collectives in the
// background, so an async all-reduce makes progress while every rank computes.
// Ranks that wait on an operation help with it too (see GroupState), so the pool
// only adds progress; nothing depends on it for correctness.
//
// The pool lives for the whole process and is never destroyed: work items hold
// shared state of groups, and whichever thread drops the last reference frees
// it, so no thread ever has to join a pool thread that may be freeing it.

#include <deque>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace trident::comm::local_internal {

class ProgressPool {
 public:
  // The process's pool: one thread per hardware thread, at most 16.
  static ProgressPool& Get();

  // Runs `work` on a pool thread soon. `work` must not block on other ranks.
  void Submit(std::function<void()> work);

  int num_threads() const { return num_threads_; }

 private:
  explicit ProgressPool(int num_threads);
  void Loop();

  const int num_threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace trident::comm::local_internal

#endif  // TRIDENT_CORE_COMM_LOCAL_PROGRESS_POOL_H_
