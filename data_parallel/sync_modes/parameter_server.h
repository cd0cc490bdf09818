#ifndef TRIDENT_DATA_PARALLEL_SYNC_MODES_PARAMETER_SERVER_H_
#define TRIDENT_DATA_PARALLEL_SYNC_MODES_PARAMETER_SERVER_H_

// A parameter server with bounded staleness (stale-synchronous parallel, Ho et
// al. 2013; Li et al. 2014), issue 12's last data-parallel mode.
//
// Ranks. The communicator holds W worker ranks [0, W) followed by the server
// ranks [W, W + N). Servers are ranks of their own rather than threads of dp
// ranks: a server must answer while its host worker computes, and a rank of
// its own keeps that to the communicator's polling, with no second thread on
// a communicator. (The trainer launches W tp = pp = 1 workers plus N servers:
// training/parameter_server_ranks.h.)
//
// Sharding. The flat fp32 parameter vector of P elements is cut into N
// contiguous windows (PsWindowOf): server j owns window j and runs AdamW on it
// (moments kept there only), per parameter segment (weight decay or not).
//
// Protocol. Clock c of worker w (0-based) is its c-th gradient. The worker
// pushes its gradient window by window to the servers and pulls every window
// of the parameters for its next clock; nothing is global (no barrier, no
// collective). A server:
//   - keeps one receive posted per worker and polls them round robin
//     (CommHandle::Test), so gradients are taken in arrival order;
//   - applies clock c once all W gradients of clock c are in: one AdamW step
//     on their sum, taken in worker-rank order (so that with the workers'
//     gradients the sync run's all-reduce sums, the update is that run's);
//     its version is then c + 1 (version = updates applied);
//   - answers worker w's pull for its clock c' only when version >= c' - S
//     (S = staleness): a worker more than S clocks ahead of the slowest worker
//     waits. The final pull (c' = steps) waits for version = steps, so every
//     worker ends with the same parameters.
// Every push leads with a one-element header (kPsPushGradient or
// kPsPushStop) because a server keeps a gradient receive posted for each
// worker's next clock and the communicator cannot cancel it: an early end
// must arrive as a message that receive matches. A worker that has pushed
// k < steps clocks and was told to stop (the trainer's stop signal, agreed
// by every worker after the same step) sends a stop push instead of clock k
// (PsWorker::Stop). A server that holds a stop after clock k from every
// worker (all the same k, else an error) applies clocks < k, sends every
// worker its version-k state unless k was already a snapshot version, and
// returns: the workers then pull that state (PsWorker::PullState) and write
// the checkpoint as at a scheduled save.
// So a gradient of clock c is computed on parameters that miss at most S of
// the updates 1..c: staleness = c - (version it read) <= S. With S = 0 every
// worker reads version c at clock c: synchronous data parallelism.
//
// Bytes per clock (fp32): a worker sends 4(P + N) (its gradient and one
// header per server) and receives 4P (the parameters); server j receives
// 4 (P_j + 1) W and sends 4 P_j W (P_j its window). A stop costs a worker one
// push more, 4(P + N) bytes, once.
//
// Starting and snapshots (for a trainer's checkpoints). A run's servers may
// take their state from worker 0 (SendPsStart / ReceivePsStart): the values,
// AdamW's moments and the absolute step of clock 0 (a resumed run's), so a
// server needs neither the model nor the checkpoint files. After the versions
// listed in PsStart::snapshot_versions a server sends every worker its
// window's values and moments (PsWorker::PullState), so that the workers can
// write a checkpoint holding the servers' state.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/ops/types.h"

namespace trident::data_parallel {

struct PsOptions {
  int workers = 1;    // W: ranks [0, W) of the communicator.
  int servers = 1;    // N: ranks [W, W + N).
  int staleness = 0;  // S >= 0.
  int64_t steps = 1;  // Clocks every worker runs.
  // Gradient clipping at this global norm (0: none). The norm is that of the
  // summed gradient over the whole vector, so the servers agree on it: each
  // sums the squares of its window and they all-gather one double per clock
  // (the `servers` communicator of PsServer::Serve).
  double grad_clip = 0;
};

// Refuses options that cannot run, naming the field, the value and the rule:
// workers >= 1, servers >= 1, staleness >= 0, steps >= 1, grad_clip >= 0,
// servers <= elements (every window non-empty), and a communicator of
// exactly W + N ranks.
absl::Status ValidatePsOptions(const PsOptions& options, int64_t elements, int world_size);

// Window j of `elements` split into `servers` contiguous parts, the first
// elements % servers one element longer.
struct PsWindow {
  int64_t offset = 0;
  int64_t length = 0;
};
PsWindow PsWindowOf(int64_t elements, int servers, int server);

// What a server saw, for the invariant tests.
struct PsAppliedGradient {
  int worker = 0;
  int64_t clock = 0;         // The gradient's clock.
  int64_t read_version = 0;  // The version of the parameters it was computed on.
  int64_t staleness() const { return clock - read_version; }
};

// A parameter segment of the flat vector: `length` elements, with or without
// decoupled weight decay (GPT-2 decays matrices only).
struct PsSegment {
  int64_t length = 0;
  bool weight_decay = false;
};

// A run's starting state as worker 0 sends it to the servers (whole vectors
// on the sending side; ReceivePsStart returns one server's windows).
struct PsStart {
  int64_t first_step = 0;  // The absolute step of clock 0 (> 0 when resumed).
  int64_t steps = 1;       // Clocks this run trains.
  // Versions (1..steps) after which every worker receives the state.
  std::vector<int64_t> snapshot_versions;
  std::vector<PsSegment> segments;  // Of the whole vector.
  std::vector<float> values, exp_avg, exp_avg_sq;
};

// Worker 0: sends every server its window of `start` (a header, then the
// values and moments windows). `options.steps` is not used.
absl::Status SendPsStart(comm::Communicator& world, const PsOptions& options,
                         const PsStart& start);
// Server `server`: receives its window of worker 0's PsStart (segments whole,
// values and moments of its window only).
absl::StatusOr<PsStart> ReceivePsStart(comm::Communicator& world, const PsOptions& options,
                                       int server);

class PsServer {
 public:
  // `initial` is the whole flat parameter vector (the workers' starting
  // values); `segments` cover it in order. `learning_rate(c)` is the rate of
  // the update that applies clock c (0-based).
  static absl::StatusOr<PsServer> Create(const PsOptions& options, int server,
                                         absl::Span<const float> initial,
                                         std::vector<PsSegment> segments,
                                         const ops::AdamWOptions& adamw,
                                         std::function<double(int64_t)> learning_rate);
  // From this server's window of a PsStart (ReceivePsStart): its values and
  // moments, clock 0 at absolute step first_step (the learning rate of
  // clock c is learning_rate(first_step + c), AdamW's step first_step + c +
  // 1), options.steps = start.steps, and the snapshots it asks for.
  static absl::StatusOr<PsServer> CreateFromStart(const PsOptions& options, int server,
                                                  PsStart start,
                                                  const ops::AdamWOptions& adamw,
                                                  std::function<double(int64_t)> learning_rate);

  // Serves until every worker pushed `steps` gradients and pulled the final
  // parameters, or until every worker stopped after the same clock k and
  // the version-k state went out (see Protocol). Fails with DEADLINE_EXCEEDED, naming the workers still owing
  // a gradient, when nothing arrives for world.timeout(). With grad_clip > 0
  // and several servers, `servers` is the communicator of the N server ranks
  // in server order (server j its rank j); every server applies clock c only
  // after the all-gather of clock c's squared norms.
  absl::Status Serve(comm::Communicator& world, comm::Communicator* servers = nullptr);

  // This server's window of the parameters (after Serve: the final values).
  const std::vector<float>& values() const { return values_; }
  const PsWindow& window() const { return window_; }
  const std::vector<PsAppliedGradient>& applied() const { return applied_; }
  int64_t version() const { return version_; }
  // The global gradient norm of every applied clock (with grad_clip > 0).
  const std::vector<double>& norms() const { return norms_; }

 private:
  PsServer() = default;
  absl::Status ApplyClock(const std::vector<std::vector<float>>& gradients,
                          comm::Communicator* servers);
  // The norm of the summed gradient of the whole vector: this window's
  // squares (segment by segment, in double), all-gathered over the servers
  // and added in server order.
  absl::StatusOr<double> GlobalNorm(comm::Communicator* servers);

  PsOptions options_;
  PsWindow window_;
  std::vector<PsSegment> segments_;  // Clipped to the window.
  ops::AdamWOptions adamw_;
  std::function<double(int64_t)> learning_rate_;
  std::vector<float> values_, exp_avg_, exp_avg_sq_, sum_;
  int64_t first_step_ = 0;
  std::vector<int64_t> snapshot_versions_;
  int64_t version_ = 0;
  std::vector<PsAppliedGradient> applied_;
  std::vector<double> norms_;
};

// One worker's side: push this clock's gradient, pull the next parameters.
class PsWorker {
 public:
  static absl::StatusOr<PsWorker> Create(const PsOptions& options, int64_t elements);

  // Sends `gradient` (the whole flat vector: each server its window) and
  // waits for the parameters of the next clock into `values`.
  absl::Status PushAndPull(comm::Communicator& world, absl::Span<const float> gradient,
                           absl::Span<float> values);

  // Receives every server's snapshot of the version it asked for
  // (PsStart::snapshot_versions), in the order they are due: the values and
  // AdamW's moments of the whole vector.
  absl::Status PullState(comm::Communicator& world, absl::Span<float> values,
                         absl::Span<float> exp_avg, absl::Span<float> exp_avg_sq);

  // Ends this worker's run after clock() < steps clocks: a stop push to
  // every server in place of the next gradient. Every worker must stop after
  // the same clock. The servers then send the state of that version unless
  // it was a snapshot version already: pull it with PullState.
  absl::Status Stop(comm::Communicator& world);

  int64_t clock() const { return clock_; }

 private:
  // Sends server j its push: `header`, then `gradient`'s window (zeros for
  // a stop); with `values`, receives the parameters of the next clock too.
  absl::Status Push(comm::Communicator& world, float header, absl::Span<const float> gradient,
                    absl::Span<float> values);

  PsOptions options_;
  int64_t elements_ = 0;
  int64_t clock_ = 0;
  bool stopped_ = false;
  // The pushes as sent: server j's header and window at pushes_[offset_j + j].
  std::vector<float> pushes_;
};

// A push's header (its first element), then the window of the gradient.
inline constexpr float kPsPushGradient = 0.0f;
inline constexpr float kPsPushStop = 1.0f;

// Message tags of the protocol.
inline constexpr int kPsGradientTag = 120;
inline constexpr int kPsValuesTag = 121;
inline constexpr int kPsStartTag = 122;
inline constexpr int kPsStateTag = 123;

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_SYNC_MODES_PARAMETER_SERVER_H_
