#ifndef TRIDENT_CORE_DEVICE_H_
#define TRIDENT_CORE_DEVICE_H_

// Devices and the allocators of their memory.
//
// A Device names where a tensor's memory lives: the host, or one CUDA GPU. An
// Allocator hands out that memory and counts it (bytes in use, live blocks, and
// the peak since the last ResetPeak()), so the trainer can report e.g. the peak
// activation memory of one pipeline stage by giving that stage its own
// allocator. Allocators are held by std::shared_ptr: every Storage keeps its
// allocator alive until its memory has been returned.
//
// Each device type has a process-wide default allocator (DefaultAllocator); the
// CPU one always exists, a CUDA backend registers its own with
// SetDefaultAllocator when it is linked in.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"

namespace trident {

enum class DeviceType : uint8_t { kCpu = 0, kCuda = 1 };

// "cpu", "cuda".
absl::string_view DeviceTypeName(DeviceType type);

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;  // GPU ordinal; always 0 for the CPU.

  static constexpr Device Cpu() { return Device{DeviceType::kCpu, 0}; }
  static constexpr Device Cuda(int index) { return Device{DeviceType::kCuda, index}; }

  bool is_cpu() const { return type == DeviceType::kCpu; }
  bool is_cuda() const { return type == DeviceType::kCuda; }
  // "cpu" or "cuda:<index>".
  std::string ToString() const;

  friend bool operator==(const Device& a, const Device& b) = default;
};

std::ostream& operator<<(std::ostream& os, const Device& device);

// Hands out memory of one device and keeps count of it. Thread-safe: ranks that
// are threads of one process may share an allocator.
class Allocator {
 public:
  // Every block is aligned to at least this many bytes (a cache line; enough
  // for any vector load).
  static constexpr size_t kAlignment = 64;

  virtual ~Allocator() = default;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  virtual Device device() const = 0;
  // Names the allocator in reports, e.g. "stage1/activations".
  const std::string& name() const { return name_; }

  // Returns kAlignment-aligned memory of `bytes` bytes; nullptr when bytes == 0.
  // Aborts with a message when the device is out of memory.
  void* Allocate(size_t bytes);
  // Returns a block from Allocate; `bytes` must be the size it was allocated with.
  void Free(void* ptr, size_t bytes);

  // Synchronous transfers between host memory and memory of this allocator's
  // device, and zeroing; plain memcpy/memset on the CPU. Used by tensor
  // factories and test helpers, never in a hot path.
  virtual void CopyFromHost(void* dst, const void* host_src, size_t bytes) const = 0;
  virtual void CopyToHost(void* host_dst, const void* src, size_t bytes) const = 0;
  virtual void SetZero(void* dst, size_t bytes) const = 0;

  // Bytes currently allocated (as requested, before alignment padding).
  int64_t bytes_in_use() const { return bytes_in_use_.load(std::memory_order_relaxed); }
  // The largest bytes_in_use() since construction or the last ResetPeak().
  int64_t peak_bytes() const { return peak_bytes_.load(std::memory_order_relaxed); }
  // Blocks allocated and not yet freed.
  int64_t live_blocks() const { return live_blocks_.load(std::memory_order_relaxed); }
  // Starts a new peak measurement at the current usage.
  void ResetPeak() { peak_bytes_.store(bytes_in_use(), std::memory_order_relaxed); }

 protected:
  explicit Allocator(std::string name) : name_(std::move(name)) {}
  // The device-specific work; RawAllocate returns nullptr when out of memory.
  virtual void* RawAllocate(size_t bytes) = 0;
  virtual void RawFree(void* ptr, size_t bytes) = 0;

 private:
  std::string name_;
  std::atomic<int64_t> bytes_in_use_{0};
  std::atomic<int64_t> peak_bytes_{0};
  std::atomic<int64_t> live_blocks_{0};
};

// Host memory, 64-byte aligned.
class CpuAllocator final : public Allocator {
 public:
  static std::shared_ptr<CpuAllocator> Create(std::string name = "cpu") {
    return std::shared_ptr<CpuAllocator>(new CpuAllocator(std::move(name)));
  }

  Device device() const override { return Device::Cpu(); }
  void CopyFromHost(void* dst, const void* host_src, size_t bytes) const override;
  void CopyToHost(void* host_dst, const void* src, size_t bytes) const override;
  void SetZero(void* dst, size_t bytes) const override;

 protected:
  void* RawAllocate(size_t bytes) override;
  void RawFree(void* ptr, size_t bytes) override;

 private:
  explicit CpuAllocator(std::string name) : Allocator(std::move(name)) {}
};

// The process-wide allocator of `device`, used by tensors made without an
// explicit allocator. Aborts when none is registered for a non-CPU device
// (e.g. a CUDA tensor in a build without the CUDA backend).
std::shared_ptr<Allocator> DefaultAllocator(Device device);

// Registers the default allocator of a device (the CUDA backend calls this at
// start-up); replaces any previous one. Its device() must equal `device`.
void SetDefaultAllocator(Device device, std::shared_ptr<Allocator> allocator);

}  // namespace trident

#endif  // TRIDENT_CORE_DEVICE_H_
