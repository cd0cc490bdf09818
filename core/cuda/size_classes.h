#ifndef TRIDENT_CORE_CUDA_SIZE_CLASSES_H_
#define TRIDENT_CORE_CUDA_SIZE_CLASSES_H_

// The size classes of the CUDA caching allocator: every request is rounded up
// to a class, and a freed block is cached on its class's free list so the next
// request of that class reuses it without a cudaMalloc (which synchronises the
// device and costs tens of microseconds).
//
// Small requests (< kLargeThreshold) round up to kSmallGranularity: activations
// of one shape hit the same class every step while padding stays under 512 B.
// Large requests round up to kLargeGranularity, the driver's page size for big
// allocations, so slightly different large sizes share a class and cudaMalloc
// is never asked for a partial page.

#include <cstddef>

namespace trident::cuda {

inline constexpr size_t kSmallGranularity = 512;
inline constexpr size_t kLargeThreshold = size_t{1} << 20;    // 1 MiB
inline constexpr size_t kLargeGranularity = size_t{2} << 20;  // 2 MiB

// The class `bytes` falls in: the bytes actually reserved for it. 0 for 0.
size_t SizeClassOf(size_t bytes);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_SIZE_CLASSES_H_
