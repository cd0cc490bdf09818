#include "core/cuda/size_classes.h"

namespace trident::cuda {
namespace {

size_t RoundUp(size_t bytes, size_t granularity) {
  return (bytes + granularity - 1) / granularity * granularity;
}

}  // namespace

size_t SizeClassOf(size_t bytes) {
  if (bytes < kLargeThreshold) return RoundUp(bytes, kSmallGranularity);
  return RoundUp(bytes, kLargeGranularity);
}

}  // namespace trident::cuda
