#include "core/cuda/stream_release.h"

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace trident::cuda {
namespace {

struct Hooks {
  absl::Mutex mutex;
  std::vector<StreamReleaseHook> hooks ABSL_GUARDED_BY(mutex);
};

Hooks& AllHooks() {
  static Hooks* hooks = new Hooks();  // Never destroyed: used until exit.
  return *hooks;
}

}  // namespace

void AddStreamReleaseHook(StreamReleaseHook hook) {
  Hooks& all = AllHooks();
  absl::MutexLock lock(&all.mutex);
  all.hooks.push_back(hook);
}

void ReleaseStreamState(void* stream) {
  std::vector<StreamReleaseHook> hooks;
  {
    Hooks& all = AllHooks();
    absl::MutexLock lock(&all.mutex);
    hooks = all.hooks;
  }
  for (StreamReleaseHook hook : hooks) hook(stream);
}

}  // namespace trident::cuda
