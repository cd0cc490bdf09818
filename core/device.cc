#include "core/device.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace trident {

absl::string_view DeviceTypeName(DeviceType type) {
  switch (type) {
    case DeviceType::kCpu:
      return "cpu";
    case DeviceType::kCuda:
      return "cuda";
  }
  return "unknown";
}

std::string Device::ToString() const {
  if (is_cpu()) return "cpu";
  return absl::StrCat(DeviceTypeName(type), ":", index);
}

std::ostream& operator<<(std::ostream& os, const Device& device) { return os << device.ToString(); }

void* Allocator::Allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = RawAllocate(bytes);
  TRIDENT_CHECK(ptr != nullptr) << "allocator '" << name_ << "' on " << device()
                                << " is out of memory: requested " << bytes << " bytes with "
                                << bytes_in_use() << " bytes in use";
  const int64_t now =
      bytes_in_use_.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed) +
      static_cast<int64_t>(bytes);
  live_blocks_.fetch_add(1, std::memory_order_relaxed);
  int64_t peak = peak_bytes_.load(std::memory_order_relaxed);
  while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  return ptr;
}

void Allocator::Free(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  RawFree(ptr, bytes);
  bytes_in_use_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed);
  live_blocks_.fetch_sub(1, std::memory_order_relaxed);
}

namespace {

// Activations are freed and allocated again every step. glibc hands large freed
// blocks back to the kernel (munmap, heap trimming), so each step page-faults
// them in again: 1-2 thousand faults per step of the default model here, about
// a third of its non-GEMM time. Keeping freed memory in the process (the
// largest mmap threshold glibc accepts on 64-bit is 32 MiB; no trimming) makes
// reuse free, as a caching allocator would. Settings given through glibc's own
// environment variables win.
void KeepFreedMemoryInProcess() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 32 << 20);
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
}

}  // namespace

void* CpuAllocator::RawAllocate(size_t bytes) {
  KeepFreedMemoryInProcess();
  // aligned_alloc wants a size that is a multiple of the alignment.
  const size_t padded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  return std::aligned_alloc(kAlignment, padded);
}

void CpuAllocator::RawFree(void* ptr, size_t /*bytes*/) { std::free(ptr); }

void CpuAllocator::CopyFromHost(void* dst, const void* host_src, size_t bytes) const {
  if (bytes > 0) std::memcpy(dst, host_src, bytes);
}

void CpuAllocator::CopyToHost(void* host_dst, const void* src, size_t bytes) const {
  if (bytes > 0) std::memcpy(host_dst, src, bytes);
}

void CpuAllocator::SetZero(void* dst, size_t bytes) const {
  if (bytes > 0) std::memset(dst, 0, bytes);
}

namespace {

struct DeviceLess {
  bool operator()(const Device& a, const Device& b) const {
    return std::make_pair(a.type, a.index) < std::make_pair(b.type, b.index);
  }
};

struct AllocatorRegistry {
  std::mutex mu;
  std::map<Device, std::shared_ptr<Allocator>, DeviceLess> allocators;
};

AllocatorRegistry& Registry() {
  // Never destroyed: tensors with static storage duration may free into it
  // during exit.
  static AllocatorRegistry* registry = [] {
    auto* r = new AllocatorRegistry;
    r->allocators[Device::Cpu()] = CpuAllocator::Create("cpu-default");
    return r;
  }();
  return *registry;
}

}  // namespace

std::shared_ptr<Allocator> DefaultAllocator(Device device) {
  AllocatorRegistry& registry = Registry();
  std::lock_guard<std::mutex> lock(registry.mu);
  auto it = registry.allocators.find(device);
  TRIDENT_CHECK(it != registry.allocators.end())
      << "no allocator is registered for device " << device
      << " (is its backend linked into this binary?)";
  return it->second;
}

void SetDefaultAllocator(Device device, std::shared_ptr<Allocator> allocator) {
  TRIDENT_CHECK(allocator != nullptr) << "null allocator for " << device;
  TRIDENT_CHECK(allocator->device() == device) << "allocator '" << allocator->name() << "' serves "
                                               << allocator->device() << ", not " << device;
  AllocatorRegistry& registry = Registry();
  std::lock_guard<std::mutex> lock(registry.mu);
  registry.allocators[device] = std::move(allocator);
}

}  // namespace trident
