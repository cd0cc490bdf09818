#ifndef TRIDENT_TOPOLOGY_LAYOUT_IO_H_
#define TRIDENT_TOPOLOGY_LAYOUT_IO_H_

// Reading a ParallelLayout from textproto, printing it back, and applying the
// single-field overrides that tools take from their command-line flags.
// Parsing only checks syntax and field names; the rules that relate fields to
// each other, to the world size and to the model live in layout_validation.h.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "topology/layout.pb.h"

namespace trident::topology {

// Parses a textproto ParallelLayout. Errors are INVALID_ARGUMENT and read
// "<source_name>:<line>:<column>: <parser message>" (1-based), e.g.
// `layout.textproto:3:1: Message type "trident.topology.ParallelLayout" has no
// field named "tensor_paralel".`
absl::StatusOr<ParallelLayout> ParseLayoutText(absl::string_view text,
                                               absl::string_view source_name = "<layout text>");

// Reads and parses the file at `path` (errors name the file). A missing or
// unreadable file is NOT_FOUND, a directory INVALID_ARGUMENT.
absl::StatusOr<ParallelLayout> LoadLayoutFromFile(const std::string& path);

// The layout as textproto, every field that is set (loadable again).
std::string LayoutToText(const ParallelLayout& layout);

// Single-field overrides of a loaded layout, filled by the tools from their
// absl flags (this library defines no flags). Unset fields leave the layout
// alone.
struct LayoutOverrides {
  std::optional<int> tp;
  std::optional<int> pp;
  std::optional<int> dp;
  std::optional<int> micro_batches;
  std::optional<int> micro_batch_size;
  std::optional<int> global_batch_size;
  std::optional<int> virtual_stages;
  std::optional<std::string> schedule;  // "gpipe", "1f1b", "interleaved", "zb-h1".
  std::optional<bool> sequence_parallel;
  std::optional<int> zero_stage;
  std::optional<bool> overlap_grad_reduce;
  std::optional<float> grad_bucket_mb;
  std::optional<bool> cpu_offload;
  std::optional<std::string> rank_order;            // e.g. "tp-dp-pp".
  std::optional<std::string> recompute;             // "none", "selective", "full".
  std::optional<std::string> gradient_compression;  // "none", "bf16", "fp16", "topk", "int8".
  std::optional<float> topk_ratio;
  std::optional<bool> topk_adaptive;
  std::optional<int> powersgd_rank;
  std::optional<std::string> compression_scaling;  // "static", "dynamic".
  std::optional<std::string> dp_allreduce;         // "native", "ring", "tree".
  std::optional<std::string> dp_sync;              // "sync", "local_sgd", "gossip", "ps".
  std::optional<int> local_sgd_steps;
  std::optional<int> ps_servers;
  std::optional<int> ps_staleness;

  bool empty() const;
};

// Writes every set override into `layout`. Fails (INVALID_ARGUMENT, layout
// untouched) only on names that do not parse, e.g. an unknown schedule; the
// values themselves are checked afterwards by ValidateLayout.
// With a global batch (global_batch_size > 0 in the layout or the overrides),
// an override of dp, micro_batch_size or global_batch_size and none of
// micro_batches, num_micro_batches is cleared so that
// DeriveMicroBatches (layout_validation.h) derives it for the new dp and
// micro-batch size, as Megatron does: a user changes dp and keeps the batch.
absl::Status ApplyOverrides(const LayoutOverrides& overrides, ParallelLayout* layout);

}  // namespace trident::topology

#endif  // TRIDENT_TOPOLOGY_LAYOUT_IO_H_
