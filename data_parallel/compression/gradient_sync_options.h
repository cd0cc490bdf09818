#ifndef TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_OPTIONS_H_
#define TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_OPTIONS_H_

// How a data-parallel gradient bucket is summed over the replicas: the
// all-reduce algorithm and the compression. The layout's fields
// (topology/layout.proto: dp_allreduce, gradient_compression and its
// parameters) map onto this struct one to one; their rules are checked with
// the layout (topology/layout_validation.cc), before the first step.

#include <cstdint>

#include "core/comm/allreduce_algorithms.h"

namespace trident::data_parallel {

enum class GradientCompression : uint8_t { kNone, kBf16, kFp16, kTopK, kInt8, kPowerSgd };

// How bf16/fp16 transport scales values before the cast.
enum class CompressionScaling : uint8_t {
  // By `static_scale` (a power of two) everywhere; an fp16 overflow fails the
  // step instead of passing infinities on.
  kStatic,
  // By a power of two per message, from its largest magnitude, so that the
  // largest element lands in [2^14, 2^15): no fp16 overflow and small values
  // keep as many bits as the format allows.
  kDynamic,
};

struct GradientSyncOptions {
  // The all-reduce of uncompressed buckets, and the transport of bf16, fp16
  // and int8 buckets must be a ring (native means ring for them).
  comm::AllReduceAlgorithm algorithm = comm::AllReduceAlgorithm::kNative;
  GradientCompression compression = GradientCompression::kNone;
  CompressionScaling scaling = CompressionScaling::kDynamic;
  float static_scale = 1024.0f;
  // Top-K: the fraction of each bucket sent, or with `topk_adaptive` K from
  // the moving average of the measured sparsity (data_parallel/compression/topk.h).
  double topk_ratio = 0.01;
  bool topk_adaptive = false;
  double topk_min_ratio = 0.001;
  double topk_max_ratio = 0.1;
  double topk_sparsity_threshold = 0.01;
  double topk_sparsity_ema = 0.9;
  // PowerSGD (data_parallel/compression/powersgd.h): the approximation's rank
  // and the first compressed step (earlier steps are summed uncompressed).
  int powersgd_rank = 4;
  int powersgd_start_step = 0;
  // Local SGD and gossip (data_parallel/sync_modes/replica_sync.h): no sum
  // over the replicas. Each replica's gradient (its share of the global
  // batch's mean) is multiplied by n, giving the mean over its own rows.
  bool replica_local = false;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_COMPRESSION_GRADIENT_SYNC_OPTIONS_H_
