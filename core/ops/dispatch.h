#ifndef TRIDENT_CORE_OPS_DISPATCH_H_
#define TRIDENT_CORE_OPS_DISPATCH_H_

// Which Backend runs the ops of a context (see core/ops/backend.h).

#include "core/device.h"
#include "core/exec_context.h"
#include "core/ops/backend.h"

namespace trident::ops {

// The backend of the context's device. Aborts when none is registered (a CUDA
// context in a build without the CUDA backend).
const Backend& BackendFor(const ExecContext& ctx);

// Installs the backend of a device type, replacing any previous one (the CPU
// backend is built in). The backend must outlive every op call: make it a
// static object. Thread-safe.
void RegisterBackend(DeviceType type, const Backend* backend);

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_DISPATCH_H_
