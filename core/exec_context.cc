#include "core/exec_context.h"

#include <sched.h>

#include <algorithm>
#include <thread>

#include "core/check.h"

namespace trident {

ExecContext ExecContext::Cpu(int num_threads) {
  return ExecContext(Device::Cpu(), /*stream=*/nullptr, num_threads, /*allocator=*/nullptr);
}

ExecContext::ExecContext(Device device, void* stream, int num_threads,
                         std::shared_ptr<Allocator> allocator)
    : device_(device), stream_(stream), num_threads_(num_threads) {
  TRIDENT_CHECK_GE(num_threads, 1) << "an execution context needs at least one thread";
  allocator_ = allocator != nullptr ? std::move(allocator) : DefaultAllocator(device);
  TRIDENT_CHECK(allocator_->device() == device)
      << "allocator '" << allocator_->name() << "' serves " << allocator_->device()
      << " but the context runs on " << device;
  if (num_threads > 1) pool_ = std::make_shared<ThreadPool>(num_threads);
}

ExecContext ExecContext::WithAllocator(std::shared_ptr<Allocator> allocator) const {
  TRIDENT_CHECK(allocator != nullptr) << "WithAllocator needs an allocator";
  TRIDENT_CHECK(allocator->device() == device_)
      << "allocator '" << allocator->name() << "' serves " << allocator->device()
      << " but the context runs on " << device_;
  ExecContext copy = *this;
  copy.allocator_ = std::move(allocator);
  return copy;
}

int AvailableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int CpuThreadsPerRank(int ranks_in_process) {
  TRIDENT_CHECK_GE(ranks_in_process, 1);
  return std::max(1, AvailableCores() / ranks_in_process);
}

}  // namespace trident
