#ifndef TRIDENT_TRAINING_STEP_RUNNER_H_
#define TRIDENT_TRAINING_STEP_RUNNER_H_

// One rank's model, optimizer and pipeline schedule, and the training step
// that drives them: the part of the trainer that every layout shares and that
// the equivalence tests run directly (DESIGN.md rule 1: one code path).
//
// A step, on every rank of the grid:
//   1. ZeroGrad; the replica's micro-batches go to the stage model;
//   2. the layout's pipeline schedule runs this stage's action list
//      (pipeline/executor.h): F, B, W of every micro-batch and chunk, with
//      activations and gradients moving over the pp group. The loss is scaled
//      by 1 / tokens of the global batch, so gradients accumulate to the mean;
//   3. with sequence parallelism the LayerNorm gradients are summed over tp;
//      with a pipeline the two copies of the tied token embedding (first and
//      last stage) have their gradients summed over the embedding group, so
//      they stay equal;
//   4. gradients are summed over the data-parallel group, bucket by bucket
//      (data_parallel/grad_buckets.h): with overlap_grad_reduce a bucket's
//      all-reduce starts during the backward, as soon as the last weight pass
//      touching it ran; buckets holding the gradients of step 3 start after it;
//   5. the global gradient norm: squared norms summed over the model-parallel
//      group (tp x pp), parameters replicated over tp counted on tp rank 0
//      only and the head's embedding copy not at all;
//   6. AdamW with clipping folded in (on the host with cpu_offload:
//      training/optimizer.h, ZeRO-Offload). Under ZeRO 3 the values are
//      sharded like the gradients: layers gather them per use
//      (data_parallel/grad_buckets.h) and the optimizer updates the shards.
// The step's loss is the last stage's, sent to every stage and summed over
// data-parallel replicas in double precision.
//
// Under dp_sync=ps (tp = pp = 1) steps 4-6 are the parameter server's: the
// gradients are not summed over dp; the worker pushes its flat gradient to
// the server ranks and pulls the parameters of its next step
// (data_parallel/sync_modes/parameter_server.h), which the servers' AdamW
// made (with the trainer's learning rate for that step, and clipping at the
// global norm the servers agree on). Under bf16 the pulled fp32 values are
// the optimizer's masters and are rounded into the 16-bit values (as local
// SGD and gossip do); the worker's own AdamW never steps.

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/exec_context.h"
#include "core/tensor.h"
#include "data_parallel/grad_buckets.h"
#include "data_parallel/sync_modes/parameter_server.h"
#include "data_parallel/sync_modes/replica_sync.h"
#include "pipeline/schedule.h"
#include "pipeline/simulator.h"
#include "topology/grid_communicators.h"
#include "topology/process_grid.h"
#include "training/export.h"
#include "training/loss_scaler.h"
#include "training/optimizer.h"
#include "training/stage_model.h"
#include "training/train_config.pb.h"

namespace trident::training {

struct StepResult {
  double loss = 0;       // Mean token loss of the global batch (every rank);
                         // NaN after StepRunner::SkipLossShare.
  // dp_sync=ps: this replica's sum of token losses (what `loss` sums over
  // the replicas); 0 otherwise.
  double replica_loss_sum = 0;
  double grad_norm = 0;  // Before clipping (every rank); NaN under dp_sync=ps.
  double lr = 0;         // The learning rate the step applied.
  // FP16: the loss scale the step ran with (0 without a loss scaler), and
  // whether the step was skipped because a gradient overflowed on some rank
  // (then grad_norm is that of the scaled gradients: inf or NaN).
  double loss_scale = 0;
  bool skipped = false;
  int64_t skipped_steps = 0;  // over the run so far (restored on resume)
};

// Optional per-step observations for the bubble profiler.
struct StepProfile {
  // Wall-clock [start, end] of each of this stage's actions, seconds after
  // `epoch` (pipeline/executor.h).
  std::vector<pipeline::ActionTiming> timings;
  // CPU time of this rank's thread in each compute action.
  std::vector<double> cpu_seconds;
  absl::Time epoch = absl::InfinitePast();
  int64_t peak_stash_bytes = 0;  // This stage's activation memory peak.
};

// What one rank holds, measured from the tensors it keeps (not estimated):
// the parameter storage (under ZeRO 3 its peak so far: the value shards plus
// the layers gathered at once), the gradient buffers (buckets, ZeRO 2-3
// shards and pool), AdamW's moments, and the stage's activation peak so far.
struct RankMemory {
  int64_t param_bytes = 0;
  int64_t grad_bytes = 0;
  int64_t optimizer_state_bytes = 0;
  int64_t activation_peak_bytes = 0;
};

class StepRunner {
 public:
  // Builds this rank's stage model (initialised from config.seed), its AdamW
  // and the layout's schedule. `comms` and `ctx` must outlive the runner.
  // Under dp_sync=ps, `ps_world` is the job's world of W workers and N
  // servers (training/parameter_server_ranks.h), `rank` the worker's rank in
  // it and `grid` the workers' grid; it must outlive the runner too.
  static absl::StatusOr<std::unique_ptr<StepRunner>> Create(
      const TrainConfig& config, const topology::ProcessGrid& grid, int rank,
      const topology::GridCommunicators& comms, const ExecContext& ctx,
      comm::Communicator* ps_world = nullptr);

  // One optimisation step at 0-based `step` (for the learning rate) on this
  // replica's rows of the global batch: `inputs` and `targets` [m *
  // micro_batch_size, T] int32. `global_tokens` is the number of loss tokens
  // in the global batch. `profile` (optional) receives this stage's action
  // timings.
  absl::StatusOr<StepResult> TrainStep(int64_t step, const Tensor& inputs, const Tensor& targets,
                                       double global_tokens, StepProfile* profile = nullptr);

  // The sum of the token losses of `inputs`/`targets` (this replica's rows,
  // shaped as for TrainStep) over every replica: a forward-only pass through
  // the pipeline. Known on every rank.
  absl::StatusOr<double> EvaluateLossSum(const Tensor& inputs, const Tensor& targets);

  // The serial model's parameters (or gradients of the last step) on global
  // rank 0 (GatherModelTensors over replica 0); empty elsewhere. Collective:
  // every rank calls it.
  absl::StatusOr<std::vector<NamedTensor>> GatherSerial(bool gradients);

  // The schedule of a (validated) layout: its kind, stages, micro-batches and
  // virtual stages.
  static absl::StatusOr<pipeline::Schedule> MakeLayoutSchedule(
      const topology::ParallelLayout& layout);

  // dp_sync=ps: TrainStep no longer sums the loss over the replicas (a
  // blocking all-gather over the workers, a barrier every step); its
  // result's loss is NaN and the caller sums replica_loss_sum itself, later
  // (training/deferred_step_reductions.h). FAILED_PRECONDITION otherwise.
  absl::Status SkipLossShare();

  // dp_sync=ps, on every worker before the first step: worker 0 sends the
  // server ranks this runner's fp32 values and AdamW moments (initialised
  // from the seed, or loaded from a checkpoint), the absolute `first_step`,
  // the `steps` to run and the versions (1..steps, counted from first_step)
  // after which the servers send every worker their state. Others: nothing.
  absl::Status StartParameterServers(int64_t first_step, int64_t steps,
                                     std::vector<int64_t> snapshot_versions);
  // dp_sync=ps, on every worker, after the step that makes a version of
  // StartParameterServers' list: the servers' values and moments into this
  // runner's optimizer (values rounded into the model under bf16), whose
  // step count becomes `optimizer_step`; the optimizer's checkpoint blobs
  // are then the servers' state.
  absl::Status PullParameterServerState(int64_t optimizer_step);
  // dp_sync=ps, on every worker after the same step, before the run's last:
  // ends the servers' run there (PsWorker::Stop). The servers then send
  // that version's state unless it was in StartParameterServers' list:
  // PullParameterServerState takes it.
  absl::Status StopParameterServers();

  // After optimizer().LoadState: with mixed precision under ZeRO 1-2 each
  // rank restored only its windows' masters (and rounded them into its
  // values); this gathers the other windows' values over dp. Collective.
  absl::Status ShareRestoredValues();

  StageModel& model() { return *model_; }
  // FP16's loss scaler; null for fp32 and bf16.
  LossScaler* loss_scaler() { return loss_scaler_ ? &*loss_scaler_ : nullptr; }
  AdamW& optimizer() { return *optimizer_; }
  data_parallel::GradientReducer& gradient_reducer() { return *reducer_; }
  // This rank's memory now (the activation peak over the steps run so far).
  RankMemory MemoryInUse();
  const pipeline::Schedule& schedule() const { return schedule_; }
  int pipeline_stage() const { return coordinates_.pp; }

 private:
  StepRunner(const TrainConfig& config, const topology::GridCommunicators& comms,
             const ExecContext& ctx)
      : config_(config), comms_(comms), ctx_(ctx) {}

  // The last stage's `value` on every stage, then summed over replicas.
  absl::StatusOr<double> ShareLoss(double value);
  absl::Status SyncTiedEmbedding();
  // Whether any gradient element the update reads, on any rank of the grid,
  // is inf or NaN (AdamW::GradientsFinite): a flag all-reduced (max) over the
  // model-parallel group and then over dp, which together reach every rank.
  absl::StatusOr<bool> AnyGradientOverflowed();
  // dp_sync=ps: steps 4-6 of the header on the servers; fills result's lr
  // (grad_norm is NaN: the norm is known on the servers only).
  absl::Status ParameterServerStep(int64_t step, StepResult& result);

  const TrainConfig& config_;
  const topology::GridCommunicators& comms_;
  const ExecContext& ctx_;
  topology::Coordinates coordinates_;
  std::unique_ptr<StageModel> model_;
  std::unique_ptr<data_parallel::GradientReducer> reducer_;
  // Local SGD and gossip: when and how the replicas' parameters meet.
  std::unique_ptr<data_parallel::ReplicaSync> replica_sync_;
  // dp_sync=ps: this worker's side of the protocol, the job's world, and the
  // flat gradient and values it sends and receives.
  std::optional<data_parallel::PsWorker> ps_worker_;
  comm::Communicator* ps_world_ = nullptr;
  std::vector<float> ps_gradient_;
  std::vector<float> ps_values_;
  bool share_loss_ = true;  // False after SkipLossShare.
  std::unique_ptr<AdamW> optimizer_;
  std::optional<LossScaler> loss_scaler_;
  pipeline::Schedule schedule_;
  pipeline::Schedule forward_schedule_;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_STEP_RUNNER_H_
