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

// NVIDIA's datasheets, dense: H100 SXM5 FP32 67 TFLOP/s, BF16/FP16 989 (the
// datasheet's 1979 with sparsity, halved: 989.4; 989 is the figure the PyTorch
// baseline bench/gpu_gpt2/torch_gpt2.py divides by, so the two MFUs compare;
// configs/hardware/h100_sxm.textproto rounds to 989.5). The H200 SXM has the
// same compute (only its memory differs). The PCIe and NVL parts run at lower
// clocks and power: not listed, so not guessed.
constexpr DatasheetRow kDatasheet[] = {
    {"NVIDIA H100 80GB HBM3", "H100 SXM5", 67e12, 989e12},
    {"NVIDIA H200", "H200 SXM", 67e12, 989e12},
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
