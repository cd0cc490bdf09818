#include "core/ops/cpu/cpu_backend.h"

namespace trident::ops::cpu {

const Backend& CpuBackend() {
  static const CpuBackendImpl* backend = new CpuBackendImpl;  // Never destroyed.
  return *backend;
}

}  // namespace trident::ops::cpu
