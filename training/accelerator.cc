#include "training/accelerator.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/check.h"

namespace trident::training {
namespace {

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<std::string, std::unique_ptr<Accelerator>> accelerators ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;  // Never destroyed.
  return *registry;
}

}  // namespace

void RegisterAccelerator(absl::string_view device, std::unique_ptr<Accelerator> accelerator) {
  TRIDENT_CHECK(accelerator != nullptr) << "RegisterAccelerator(" << device << ", null)";
  Registry& registry = TheRegistry();
  absl::MutexLock lock(&registry.mu);
  const bool inserted =
      registry.accelerators.try_emplace(std::string(device), std::move(accelerator)).second;
  TRIDENT_CHECK(inserted) << "two accelerators registered for device " << device;
}

const Accelerator* FindAccelerator(absl::string_view device) {
  Registry& registry = TheRegistry();
  absl::MutexLock lock(&registry.mu);
  const auto it = registry.accelerators.find(device);
  return it == registry.accelerators.end() ? nullptr : it->second.get();
}

}  // namespace trident::training
