#include "training/device_peak.h"

#include "absl/strings/str_cat.h"

namespace trident::training {
namespace {

struct DatasheetRow {
  absl::string_view device_name;  // Exactly as cudaGetDeviceProperties names it.
  absl::string_view product;
  double fp32;
  double bf16_fp16;
};

// NVIDIA's datasheets, dense: the H100 SXM5 figures of
// configs/hardware/h100_sxm.textproto (FP32 67, BF16/FP16 989.5 TFLOP/s); the
// H200 SXM has the same compute (only its memory differs). The PCIe and NVL
// parts run at lower clocks and power: not listed, so not guessed.
constexpr DatasheetRow kDatasheet[] = {
    {"NVIDIA H100 80GB HBM3", "H100 SXM5", 67e12, 989.5e12},
    {"NVIDIA H200", "H200 SXM", 67e12, 989.5e12},
};

}  // namespace

std::optional<DevicePeak> DatasheetPeak(absl::string_view device_name, Precision precision) {
  for (const DatasheetRow& row : kDatasheet) {
    if (row.device_name != device_name) continue;
    const bool sixteen_bit = precision == BF16 || precision == FP16;
    const double flops = sixteen_bit ? row.bf16_fp16 : row.fp32;
    return DevicePeak{
        .flops_per_second = flops,
        .source = absl::StrCat(row.product, " datasheet, dense ",
                               sixteen_bit ? "bf16/fp16 tensor cores" : "fp32 (no TF32)")};
  }
  return std::nullopt;
}

}  // namespace trident::training
