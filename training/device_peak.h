#ifndef TRIDENT_TRAINING_DEVICE_PEAK_H_
#define TRIDENT_TRAINING_DEVICE_PEAK_H_

// MFU's denominator on a GPU: the datasheet's dense peak of the matrix units
// for the run's precision, looked up by the device name the CUDA runtime
// reports (cudaGetDeviceProperties). A GPU not in the table gets no peak, and
// the trainer prints no MFU rather than guess.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct DevicePeak {
  double flops_per_second = 0;
  std::string source;  // Where the figure comes from, for the run's header.
};

// The dense (no sparsity) peak of `device_name` for `precision`'s GEMMs: bf16
// and fp16 tensor cores, or fp32 without TF32 (the CUDA GEMMs use TF32 only
// when asked). nullopt for a device not in the table.
std::optional<DevicePeak> DatasheetPeak(absl::string_view device_name, Precision precision);

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_DEVICE_PEAK_H_
