#ifndef TRIDENT_DATA_PARALLEL_SYNC_MODES_PS_QUADRATIC_TESTING_H_
#define TRIDENT_DATA_PARALLEL_SYNC_MODES_PS_QUADRATIC_TESTING_H_

// The problem the parameter-server tests train, shared by the local-backend
// test (parameter_server_test.cc) and the MPI one
// (tests/comm/mpi/parameter_server_mpi_test.cc): a quadratic whose worker w
// has the gradient (x - t_w) / W at x, so the workers' gradients sum to the
// gradient of the mean of 0.5 |x - t_w|^2, over 37 elements (uneven windows)
// in two segments (20 decayed, 17 not).

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/ops/types.h"
#include "data_parallel/sync_modes/parameter_server.h"

namespace trident::data_parallel::testing {

inline constexpr int64_t kPsElements = 37;

std::vector<PsSegment> PsSegments();
ops::AdamWOptions PsAdam();
double PsLearningRate(int64_t clock);
std::vector<float> PsInitial();
// Worker `worker`'s gradient at x.
std::vector<float> PsGradient(int worker, int workers, absl::Span<const float> x);
// The objective whose gradient the workers' gradients sum to.
double PsObjective(absl::Span<const float> x, int workers);

// Synchronous data parallelism over `dp` for `steps` clocks: all-reduce
// (sum) of the gradients, then the same AdamW step as a server's; the values
// after each clock.
absl::StatusOr<std::vector<std::vector<float>>> SyncRun(comm::Communicator& dp, int64_t steps);

// One rank's part of a parameter-server run on `world` (workers first, then
// servers). `slow_worker` (>= 0) sleeps 2 ms before each push, so that the
// others run ahead. `stop_after` (>= 0, < steps): every worker stops after
// that many clocks (PsWorker::Stop) and pulls the servers' state.
struct PsRankResult {
  std::vector<std::vector<float>> trajectory;  // A worker's values after each pull.
  // With stop_after: the state a worker pulled at the stop.
  std::vector<float> stop_values, stop_exp_avg, stop_exp_avg_sq;
  std::vector<PsAppliedGradient> applied;      // A server's record.
  int64_t window = 0;                          // A server's window length.
};
absl::StatusOr<PsRankResult> RunPsRank(comm::Communicator& world, const PsOptions& options,
                                       int slow_worker = -1, int64_t stop_after = -1);

}  // namespace trident::data_parallel::testing

#endif  // TRIDENT_DATA_PARALLEL_SYNC_MODES_PS_QUADRATIC_TESTING_H_
