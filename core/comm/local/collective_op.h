#ifndef TRIDENT_CORE_COMM_LOCAL_COLLECTIVE_OP_H_
#define TRIDENT_CORE_COMM_LOCAL_COLLECTIVE_OP_H_

// One collective of a local group, shared by the threads of its members: the
// arguments each member brought, the check that they agree, and the data
// movement, cut into chunks (element ranges) that any thread may run, in any
// order and concurrently, with identical results: each chunk reduces its
// elements over all members in group-rank order (rank 0 op rank 1 op ...), so
// the outcome never depends on which thread ran what.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::comm::local_internal {

// One member's arguments. For all-reduce and broadcast `in` and `out` are the
// same buffer.
struct Contribution {
  CommOp kind = CommOp::kBarrier;
  const void* in = nullptr;
  void* out = nullptr;
  int64_t in_count = 0;
  int64_t out_count = 0;
  DType dtype = DType::kFloat32;
  ReduceOp reduce_op = ReduceOp::kSum;
  int root = 0;
};

// The `seq`-th collective issued on a group. The bookkeeping fields are guarded
// by the owning GroupState's mutex; the chunk plan is written once (Plan) before
// the op runs and only read afterwards.
struct CollectiveOp {
  enum class State { kGathering, kRunning, kDone };

  CollectiveOp(int64_t seq, int group_size)
      : seq(seq), parts(group_size), arrived(group_size, false) {}

  const int64_t seq;
  std::vector<Contribution> parts;  // By group rank.
  std::vector<bool> arrived;
  int num_arrived = 0;
  // The operation named in errors: that of the first member to arrive.
  CommOp kind = CommOp::kBarrier;

  State state = State::kGathering;
  absl::Status status;  // Final status once kDone.
  int64_t next_chunk = 0;
  int64_t chunks_done = 0;

  bool all_arrived() const { return num_arrived == static_cast<int>(parts.size()); }
  // The world ranks of the members that have not arrived yet.
  std::vector<int> MissingWorldRanks(absl::Span<const int> world_ranks) const;

  // Checks that all members passed matching arguments (INVALID_ARGUMENT naming
  // them otherwise) and cuts the work into chunks. Call once, when all arrived.
  absl::Status Plan(absl::string_view group_description, absl::Span<const int> world_ranks);

  int64_t num_chunks() const { return num_chunks_; }
  // Whether the whole operation is small enough that the thread that finds it
  // ready should run it at once rather than hand it to helpers.
  bool run_inline() const { return run_inline_; }

  // Moves the data of chunk `k` (0 <= k < num_chunks()). Thread-safe for
  // distinct k; takes no lock.
  void RunChunk(int64_t k) const;

 private:
  void ReduceRange(int64_t in_offset, int64_t len, int64_t out_offset, int first_out,
                   int last_out) const;

  int64_t chunk_elems_ = 0;      // Elements per chunk.
  int64_t chunks_per_slice_ = 0;  // Reduce-scatter / all-gather: chunks per member slice.
  int64_t num_chunks_ = 0;
  bool run_inline_ = true;
};

}  // namespace trident::comm::local_internal

#endif  // TRIDENT_CORE_COMM_LOCAL_COLLECTIVE_OP_H_
