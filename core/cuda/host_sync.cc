#include "core/cuda/host_sync.h"

#include <atomic>

namespace trident::cuda {
namespace {

std::atomic<int64_t> host_syncs{0};

}  // namespace

void CountHostSync() { host_syncs.fetch_add(1, std::memory_order_relaxed); }

int64_t HostSyncCount() { return host_syncs.load(std::memory_order_relaxed); }

}  // namespace trident::cuda
