#include "core/ops/dispatch.h"

#include <array>
#include <atomic>

#include "core/check.h"
#include "core/ops/cpu/cpu_backend.h"
#include "core/ops/cpu/float16_storage.h"

namespace trident::ops {
namespace {

constexpr int kNumDeviceTypes = 2;

// Lock-free reads on every op call; writes are rare (start-up).
struct Registry {
  Registry() {
    // The CPU kernels compute in fp32; the decorator gives them bf16/fp16
    // operands (converted in, rounded to nearest-even on store).
    static const cpu::Float16StorageBackend* cpu_backend =
        new cpu::Float16StorageBackend(cpu::CpuBackend());  // Never destroyed.
    backends[static_cast<int>(DeviceType::kCpu)].store(cpu_backend);
    backends[static_cast<int>(DeviceType::kCuda)].store(nullptr);
  }
  std::array<std::atomic<const Backend*>, kNumDeviceTypes> backends;
};

std::array<std::atomic<const Backend*>, kNumDeviceTypes>& Backends() {
  static Registry* registry = new Registry;  // Never destroyed.
  return registry->backends;
}

}  // namespace

const Backend& BackendFor(const ExecContext& ctx) {
  const int type = static_cast<int>(ctx.device().type);
  TRIDENT_CHECK(type >= 0 && type < kNumDeviceTypes) << "unknown device " << ctx.device();
  const Backend* backend = Backends()[type].load(std::memory_order_acquire);
  TRIDENT_CHECK(backend != nullptr)
      << "no op backend is registered for " << ctx.device() << " (is the "
      << DeviceTypeName(ctx.device().type) << " backend linked into this binary?)";
  return *backend;
}

void RegisterBackend(DeviceType type, const Backend* backend) {
  TRIDENT_CHECK(backend != nullptr) << "RegisterBackend with a null backend";
  Backends()[static_cast<int>(type)].store(backend, std::memory_order_release);
}

}  // namespace trident::ops
