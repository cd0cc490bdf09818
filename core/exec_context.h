#ifndef TRIDENT_CORE_EXEC_CONTEXT_H_
#define TRIDENT_CORE_EXEC_CONTEXT_H_

// The execution context every op takes explicitly (DESIGN.md rule 3): which
// device runs the op, on which stream, with how many CPU threads, and which
// allocator convenience wrappers allocate from.
//
// One context per rank. Ranks may be threads of one process, so a context owns
// its own thread pool and never changes process-wide settings behind the other
// ranks' backs. Copies of a context share its pool (cheap to pass around).
//
// Threading policy for the CPU:
// - Our kernels use the context's threads (num_threads(), default 1). When k
//   ranks share a process on C cores, give each CpuThreadsPerRank(k) threads.
// - OpenBLAS's own thread count is process-global, so the CPU backend pins it to
//   1 once (openblas_set_num_threads(1) on first use) and parallelises GEMMs
//   itself by splitting them over the context's threads. Concurrent
//   single-threaded OpenBLAS calls from several ranks are safe; a multi-threaded
//   OpenBLAS shared by rank threads would oversubscribe the cores or serialise.

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/functional/function_ref.h"
#include "core/device.h"
#include "core/thread_pool.h"

namespace trident {

class ExecContext {
 public:
  // A CPU context whose kernels use `num_threads` >= 1 threads: the caller's
  // plus num_threads - 1 workers owned by the context.
  static ExecContext Cpu(int num_threads = 1);

  // Any device. `stream` is the device's opaque stream handle (a cudaStream_t
  // on CUDA; nullptr on the CPU). `allocator` null means the device's default.
  ExecContext(Device device, void* stream, int num_threads, std::shared_ptr<Allocator> allocator);

  const Device& device() const { return device_; }
  void* stream() const { return stream_; }
  int num_threads() const { return num_threads_; }

  // Where convenience wrappers (functions that return a new Tensor) allocate.
  const std::shared_ptr<Allocator>& allocator() const { return allocator_; }
  // The same context, allocating from `allocator` (e.g. a per-stage activation
  // allocator whose peak the trainer reports).
  ExecContext WithAllocator(std::shared_ptr<Allocator> allocator) const;

  // ThreadPool::ParallelFor over this context's threads; inline when it has one.
  void ParallelFor(int64_t n, int64_t min_chunk,
                   absl::FunctionRef<void(int64_t, int64_t)> fn) const {
    if (pool_ == nullptr) {
      if (n > 0) fn(0, n);
      return;
    }
    pool_->ParallelFor(n, min_chunk, fn);
  }

 private:
  Device device_;
  void* stream_ = nullptr;
  int num_threads_ = 1;
  std::shared_ptr<Allocator> allocator_;
  std::shared_ptr<ThreadPool> pool_;  // Null when num_threads_ == 1.
};

// The cores this process may run on: its CPU affinity mask (what `taskset`,
// cgroups' cpusets or an MPI launcher's binding leave it), not the machine's
// core count.
int AvailableCores();

// CPU threads for each of `ranks_in_process` ranks sharing this process's
// cores: max(1, AvailableCores() / ranks_in_process).
int CpuThreadsPerRank(int ranks_in_process);

}  // namespace trident

#endif  // TRIDENT_CORE_EXEC_CONTEXT_H_
