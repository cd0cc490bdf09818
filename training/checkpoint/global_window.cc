#include "training/checkpoint/global_window.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace trident::checkpoint {

ShardSpec ShardSpec::Canonical() const {
  if (!replicated()) return *this;
  ShardSpec spec;
  spec.global_shape = global_shape;
  return spec;
}

absl::StatusOr<std::vector<int64_t>> LocalShape(const ShardSpec& spec) {
  const auto invalid = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shard spec of global shape [", absl::StrJoin(spec.global_shape, ", "), "]: ", what));
  };
  for (const int64_t dim : spec.global_shape) {
    if (dim < 0) return invalid("negative dimension");
  }
  if (spec.replicated()) return spec.global_shape;
  if (spec.split_dim >= static_cast<int>(spec.global_shape.size())) {
    return invalid(absl::StrCat("split_dim ", spec.split_dim, " is outside the shape"));
  }
  if (spec.blocks < 1 || spec.num_shards < 1 || spec.shard_index < 0 ||
      spec.shard_index >= spec.num_shards) {
    return invalid(absl::StrCat("blocks ", spec.blocks, ", num_shards ", spec.num_shards,
                                ", shard_index ", spec.shard_index, " are inconsistent"));
  }
  const int64_t split = spec.global_shape[spec.split_dim];
  if (split % (int64_t{spec.num_shards} * spec.blocks) != 0) {
    return invalid(absl::StrCat("dim ", spec.split_dim, " (", split, ") is not divisible by ",
                                spec.num_shards, " shards x ", spec.blocks, " blocks"));
  }
  std::vector<int64_t> local = spec.global_shape;
  local[spec.split_dim] = split / spec.num_shards;
  return local;
}

absl::StatusOr<std::vector<FlatRun>> GlobalRuns(const ShardSpec& spec, int64_t offset,
                                                int64_t length) {
  ASSIGN_OR_RETURN(const std::vector<int64_t> local, LocalShape(spec));
  int64_t elements = 1;
  for (const int64_t dim : local) elements *= dim;
  if (offset < 0 || length < 0 || offset > elements || length > elements - offset) {
    return absl::InvalidArgumentError(absl::StrCat("elements [", offset, ", ", offset + length,
                                                   ") are outside a local tensor of ", elements));
  }
  std::vector<FlatRun> runs;
  if (length == 0) return runs;
  if (spec.replicated()) {
    runs.push_back({offset, offset, length});
    return runs;
  }
  const int d = spec.split_dim;
  int64_t inner = 1;
  for (size_t k = d + 1; k < local.size(); ++k) inner *= local[k];
  const int64_t local_split = local[d];
  const int64_t global_split = spec.global_shape[d];
  const int64_t chunk = local_split / spec.blocks;         // local rows per block
  const int64_t global_chunk = global_split / spec.blocks;  // global rows per block
  const int64_t piece = chunk * inner;  // local elements mapped contiguously
  const int64_t end = offset + length;
  for (int64_t p = offset / piece; p * piece < end; ++p) {
    const int64_t outer = p / spec.blocks;
    const int64_t block = p % spec.blocks;
    const int64_t local_begin = p * piece;
    const int64_t global_begin =
        outer * global_split * inner + (block * global_chunk + spec.shard_index * chunk) * inner;
    const int64_t begin = std::max(offset, local_begin);
    const int64_t stop = std::min(end, local_begin + piece);
    runs.push_back({begin, global_begin + (begin - local_begin), stop - begin});
  }
  return runs;
}

}  // namespace trident::checkpoint
