#ifndef TRIDENT_TRAINING_ACCELERATOR_H_
#define TRIDENT_TRAINING_ACCELERATOR_H_

// What the trainer needs of an accelerator (--device=cuda) that only a binary
// built with its toolkit can provide: the visible devices, and a rank's
// context on one of them with a way to upload the step's inputs. The CUDA
// implementation (//training/cuda:cuda_accelerator, alwayslink) registers
// itself at start-up, as the CUDA ops backend does (core/ops/backend.h), so
// training/ builds and tests without the toolkit and has no #ifdefs: a binary
// that does not link it finds no accelerator and says so.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/exec_context.h"
#include "core/tensor.h"

namespace trident::training {

struct AcceleratorDevice {
  int index = 0;
  std::string name;  // As the runtime reports it, e.g. "NVIDIA H100 80GB HBM3".
  int64_t free_memory_bytes = 0;
};

// One rank's device: its execution context (stream, allocator), alive as long
// as this object.
class AcceleratorRank {
 public:
  virtual ~AcceleratorRank() = default;

  // The context every op of the rank runs with.
  virtual const ExecContext& exec() const = 0;

  // A copy of the host tensor `host` (contiguous) on this device, queued on
  // exec()'s stream; `host` may be freed when this returns.
  virtual absl::StatusOr<Tensor> Upload(const Tensor& host) const = 0;

  // Waits until everything queued on this device, on any stream, has run
  // (after set-up, whose synchronous allocator transfers use the runtime's
  // default stream rather than exec()'s).
  virtual absl::Status WaitForDevice() const = 0;
};

class Accelerator {
 public:
  virtual ~Accelerator() = default;

  // The devices this process can use; UNAVAILABLE with the runtime's reason
  // when there is none (no driver, no device).
  virtual absl::StatusOr<std::vector<AcceleratorDevice>> VisibleDevices() const = 0;

  // A rank's context on device `index`.
  virtual absl::StatusOr<std::unique_ptr<AcceleratorRank>> Open(int index) const = 0;
};

// Called once per device name at start-up by the implementation's library.
void RegisterAccelerator(absl::string_view device, std::unique_ptr<Accelerator> accelerator);

// The accelerator registered for `device` ("cuda"); null when this binary
// links none.
const Accelerator* FindAccelerator(absl::string_view device);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_ACCELERATOR_H_
