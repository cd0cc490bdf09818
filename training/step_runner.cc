#include "training/step_runner.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/tensor_comm.h"
#include "data_parallel/compression/gradient_sync_options.h"
#include "data_parallel/sync_modes/replica_sync.h"
#include "pipeline/executor.h"
#include "training/deferred_step_reductions.h"
#include "training/lr_schedule.h"
#include "training/model_gather.h"
#include "training/parameter_server_ranks.h"
#include "training/precision.h"

namespace trident::training {
namespace {

pipeline::ScheduleKind ScheduleKindOf(topology::PipelineSchedule schedule) {
  switch (schedule) {
    case topology::GPIPE:
      return pipeline::ScheduleKind::kGPipe;
    case topology::ONE_F_ONE_B:
      return pipeline::ScheduleKind::kOneFOneB;
    case topology::INTERLEAVED_1F1B:
      return pipeline::ScheduleKind::kInterleaved1F1B;
    case topology::ZERO_BUBBLE_H1:
      return pipeline::ScheduleKind::kZeroBubbleH1;
  }
  return pipeline::ScheduleKind::kOneFOneB;
}

}  // namespace

namespace {

// The gradient bucket size. Under ZeRO 2 (and 3, on the same gradient path)
// buckets hold whole layers and a rank keeps kGradientPoolBuffers of them in
// full (data_parallel/grad_buckets.h): buckets are capped at the stage's
// largest layer, so that the pool holds two layers' gradients, not (with the
// default 25 MiB) the whole of a small model twice.
double BucketMegabytes(const topology::ParallelLayout& layout, StageModel& model) {
  const double configured = layout.grad_bucket_mb();
  if (layout.zero_stage() < 2 || layout.data_parallel() < 2) return configured;
  int64_t largest = 0;
  for (const ParameterList& layer : model.layers()) {
    int64_t elements = 0;
    for (const Parameter* p : layer) elements += p->value.numel();
    largest = std::max(largest, elements);
  }
  return std::min(configured, static_cast<double>(largest) * sizeof(float) / (1 << 20));
}

// The layout's gradient sync fields (validated with the layout) as the
// data-parallel options.
data_parallel::GradientSyncOptions GradientSyncFrom(const topology::ParallelLayout& layout) {
  using data_parallel::GradientCompression;
  data_parallel::GradientSyncOptions sync;
  switch (layout.dp_allreduce()) {
    case topology::DpAllReduce::NATIVE:
      sync.algorithm = comm::AllReduceAlgorithm::kNative;
      break;
    case topology::DpAllReduce::RING:
      sync.algorithm = comm::AllReduceAlgorithm::kRing;
      break;
    case topology::DpAllReduce::TREE:
      sync.algorithm = comm::AllReduceAlgorithm::kTree;
      break;
  }
  switch (layout.gradient_compression()) {
    case topology::GradientCompression::NONE:
      sync.compression = GradientCompression::kNone;
      break;
    case topology::GradientCompression::BF16:
      sync.compression = GradientCompression::kBf16;
      break;
    case topology::GradientCompression::FP16:
      sync.compression = GradientCompression::kFp16;
      break;
    case topology::GradientCompression::TOPK:
      sync.compression = GradientCompression::kTopK;
      break;
    case topology::GradientCompression::INT8:
      sync.compression = GradientCompression::kInt8;
      break;
    case topology::GradientCompression::POWERSGD:
      sync.compression = GradientCompression::kPowerSgd;
      break;
  }
  sync.scaling = layout.compression_scaling() == topology::GradientCompression::STATIC
                     ? data_parallel::CompressionScaling::kStatic
                     : data_parallel::CompressionScaling::kDynamic;
  sync.static_scale = layout.compression_static_scale();
  sync.topk_ratio = layout.topk_ratio();
  sync.topk_adaptive = layout.topk_adaptive();
  sync.topk_min_ratio = layout.topk_min_ratio();
  sync.topk_max_ratio = layout.topk_max_ratio();
  sync.topk_sparsity_threshold = layout.topk_sparsity_threshold();
  sync.topk_sparsity_ema = layout.topk_sparsity_ema();
  // Local SGD and gossip step on their own rows' mean; ps runs no reducer
  // sum at all (StepRunner::Create gives its reducer no dp group).
  sync.replica_local = layout.dp_sync() == topology::DpSync::LOCAL_SGD ||
                       layout.dp_sync() == topology::DpSync::GOSSIP;
  sync.powersgd_rank = layout.powersgd_rank();
  sync.powersgd_start_step = layout.powersgd_start_step();
  return sync;
}

// The layout's dp_sync fields (validated with the layout) as the replica
// synchronisation options.
data_parallel::ReplicaSyncOptions ReplicaSyncFrom(const topology::ParallelLayout& layout) {
  data_parallel::ReplicaSyncOptions options;
  switch (layout.dp_sync()) {
    case topology::DpSync::SYNC:
      options.mode = data_parallel::DpSyncMode::kSync;
      break;
    case topology::DpSync::LOCAL_SGD:
      options.mode = data_parallel::DpSyncMode::kLocalSgd;
      break;
    case topology::DpSync::GOSSIP:
      options.mode = data_parallel::DpSyncMode::kGossip;
      break;
    case topology::DpSync::PS:
      break;  // The servers update the parameters: nothing to mix (kSync).
  }
  options.local_sgd_steps = layout.local_sgd_steps();
  options.algorithm = GradientSyncFrom(layout).algorithm;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StepRunner>> StepRunner::Create(
    const TrainConfig& config, const topology::ProcessGrid& grid, int rank,
    const topology::GridCommunicators& comms, const ExecContext& ctx,
    comm::Communicator* ps_world) {
  const topology::ParallelLayout& layout = config.layout();
  const bool ps = layout.dp_sync() == topology::DpSync::PS;
  if (ps && (ps_world == nullptr || ps_world->size() != JobWorldSize(layout))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dp_sync=ps: the step runner needs the job's world of data_parallel + ps_servers = ",
        JobWorldSize(layout), " ranks"));
  }
  std::unique_ptr<StepRunner> runner(new StepRunner(config, comms, ctx));
  runner->coordinates_ = grid.CoordinatesOf(rank);
  ASSIGN_OR_RETURN(runner->model_,
                   StageModel::Create(config.model(), layout, runner->coordinates_.pp,
                                      tp::TpGroup(comms.tp.get()), ctx));
  runner->model_->Initialize(static_cast<uint64_t>(config.seed()));
  // Gradients whose step-3 sums (see the header) run after the backward wait
  // for them in buckets of their own.
  ParameterList late = runner->model_->sequence_parallel_partials();
  if (layout.pipeline_parallel() > 1 && comms.embedding != nullptr &&
      runner->model_->tied_embedding() != nullptr) {
    late.push_back(runner->model_->tied_embedding());
  }
  ASSIGN_OR_RETURN(runner->reducer_,
                   data_parallel::GradientReducer::Create(
                       runner->model_->parameters(), late, ps ? nullptr : comms.dp.get(),
                       {.bucket_mb = BucketMegabytes(layout, *runner->model_),
                        .overlap = layout.overlap_grad_reduce(),
                        .zero_stage = layout.zero_stage(),
                        .ctx = &ctx,
                        .sync = GradientSyncFrom(layout),
                        .layers = runner->model_->layers(),
                        .value_dtype = ModelDType(config.precision())}));
  data_parallel::GradientReducer* reducer = runner->reducer_.get();
  runner->model_->SetGradientHooks(
      {.gradients_final = [reducer](const ParameterList& p) { reducer->MarkFinal(p); },
       .layer_starting = [reducer](const ParameterList& p) { reducer->LayerStarting(p); },
       .layer_done = [reducer](const ParameterList& p) { reducer->LayerDone(p); },
       .after_weight_pass = [reducer] { reducer->Poll(); }});
  ASSIGN_OR_RETURN(runner->optimizer_,
                   AdamW::Create(ctx, runner->model_->parameters(),
                                 AdamWSettingsFrom(config.optimizer())));
  if (config.precision() != FP32) {
    // Mixed precision: fp32 masters in the optimizer, 16-bit values and
    // activations in the model, fp32 gradients (see the README).
    const DType model_dtype = ModelDType(config.precision());
    RETURN_IF_ERROR(runner->optimizer_->KeepFp32Masters(ctx, model_dtype));
    runner->model_->SetActivationDType(model_dtype);
  }
  if (config.precision() == FP16) {
    ASSIGN_OR_RETURN(LossScaler scaler, LossScaler::Create(config.loss_scale()));
    runner->loss_scaler_.emplace(scaler);
  }
  if (runner->reducer_->zero_stage() > 0) {
    std::vector<StateWindow> windows;
    for (const data_parallel::OwnedWindow& w : runner->reducer_->owned_windows()) {
      windows.push_back({.param = w.param,
                         .offset = w.offset,
                         .length = w.length,
                         .grad = w.grad,
                         .value = w.value});
    }
    RETURN_IF_ERROR(runner->optimizer_->ShardState(ctx, std::move(windows)));
    // ZeRO 3: from here on the values live in the windows (the optimizer
    // updates them there) and layers gather them per use.
    RETURN_IF_ERROR(runner->reducer_->ShardParameters());
    if (runner->reducer_->zero_stage() == 3) {
      runner->model_->SetParameterHooks(
          {.prefetch = [reducer](const ParameterList& p) { reducer->PrefetchParameters(p); },
           .needed = [reducer](const ParameterList& p) { return reducer->NeedParameters(p); },
           .done = [reducer](const ParameterList& p) { reducer->DoneWithParameters(p); }});
    }
  } else if (layout.zero_stage() > 0 && rank == 0) {
    std::clog << "ZeRO stage " << layout.zero_stage()
              << " with data_parallel=1: nothing to shard, every rank keeps its whole optimizer "
                 "state\n";
  }
  // ZeRO-Offload: this rank's (shard of the) optimizer state to the host.
  if (layout.cpu_offload()) RETURN_IF_ERROR(runner->optimizer_->OffloadToHost(ctx));
  const NormFilter replicated = CountReplicatedOnlyOnTensorRank0(comms.tp->rank());
  const Parameter* head_copy = runner->model_->head_embedding_copy();
  runner->optimizer_->SetNormFilter([replicated, head_copy](const Parameter& p) {
    return &p != head_copy && replicated(p);
  });
  // Under mixed precision the replicas mix the fp32 masters (dp_sync needs
  // ZeRO 0, so they are unsharded); TrainStep rounds them into the values.
  runner->replica_sync_ = std::make_unique<data_parallel::ReplicaSync>(
      ReplicaSyncFrom(layout), runner->optimizer_->Fp32Values());
  if (ps) {
    int64_t elements = 0;
    for (const Parameter* p : runner->optimizer_->params()) elements += p->value.numel();
    ASSIGN_OR_RETURN(data_parallel::PsWorker worker,
                     data_parallel::PsWorker::Create(PsOptionsFor(config, config.steps()), elements));
    runner->ps_worker_.emplace(std::move(worker));
    runner->ps_world_ = ps_world;
    runner->ps_gradient_.resize(elements);
    runner->ps_values_.resize(elements);
  }
  ASSIGN_OR_RETURN(runner->schedule_, MakeLayoutSchedule(layout));
  ASSIGN_OR_RETURN(runner->forward_schedule_,
                   pipeline::MakeForwardOnlySchedule(layout.pipeline_parallel(),
                                                     layout.num_micro_batches(),
                                                     layout.virtual_pipeline_stages()));
  return runner;
}

absl::StatusOr<pipeline::Schedule> StepRunner::MakeLayoutSchedule(
    const topology::ParallelLayout& layout) {
  return pipeline::MakeSchedule(ScheduleKindOf(layout.schedule()), layout.pipeline_parallel(),
                                layout.num_micro_batches(), layout.virtual_pipeline_stages());
}

absl::Status StepRunner::SyncTiedEmbedding() {
  // Stage 0 holds wte, the last stage a copy for the head. Each received only
  // its own share of the gradient; summing both over the embedding group gives
  // both the serial gradient, and equal copies take equal AdamW steps.
  if (config_.layout().pipeline_parallel() == 1 || comms_.embedding == nullptr) {
    return absl::OkStatus();
  }
  Parameter* wte = model_->tied_embedding();
  if (wte == nullptr) {
    return absl::InternalError(absl::StrCat("pipeline stage ", coordinates_.pp,
                                            " is in the embedding group but holds no wte"));
  }
  return comms_.embedding->AllReduce(AsCommBuffer(wte->grad), comm::ReduceOp::kSum);
}

absl::StatusOr<double> StepRunner::ShareLoss(double value) {
  // Doubles travel as their bits (int64): the broadcast and gather are exact,
  // and every rank sums the replicas in the same order.
  int64_t bits = std::bit_cast<int64_t>(value);
  if (comms_.pp->size() > 1) {
    RETURN_IF_ERROR(comms_.pp->Broadcast(comm::Buffer{&bits, 1, DType::kInt64},
                                         comms_.pp->size() - 1));
  }
  const int dp = comms_.dp->size();
  if (dp == 1) return std::bit_cast<double>(bits);
  std::vector<int64_t> all(dp);
  RETURN_IF_ERROR(comms_.dp->AllGather(comm::ConstBuffer(&bits, 1, DType::kInt64),
                                       comm::Buffer{all.data(), dp, DType::kInt64}));
  return SumReplicaLosses(all);
}

absl::StatusOr<StepResult> StepRunner::TrainStep(int64_t step, const Tensor& inputs,
                                                 const Tensor& targets, double global_tokens,
                                                 StepProfile* profile) {
  const topology::ParallelLayout& layout = config_.layout();
  optimizer_->ZeroGrad(ctx_);
  reducer_->BeginStep();
  // FP16: the backward starts from loss x scale, so that small gradients do
  // not flush to zero in fp16; the update divides it out again.
  const double loss_scale = loss_scaler_ ? loss_scaler_->scale() : 1.0;
  model_->SetMicroBatches(inputs, targets, layout.micro_batch_size(),
                          static_cast<float>(loss_scale / global_tokens), /*forward_only=*/false);
  pipeline::ExecutorOptions options;
  if (profile != nullptr) {
    options.timings = &profile->timings;
    options.cpu_seconds = &profile->cpu_seconds;
    options.epoch = profile->epoch;
  }
  RETURN_IF_ERROR(pipeline::RunStageSchedule(schedule_, coordinates_.pp, *model_,
                                             comms_.pp.get(), options));
  if (profile != nullptr) profile->peak_stash_bytes = model_->peak_stash_bytes();
  RETURN_IF_ERROR(model_->ReduceSequenceParallelGradients());
  RETURN_IF_ERROR(SyncTiedEmbedding());
  RETURN_IF_ERROR(reducer_->Finish());

  StepResult result;
  if (ps_worker_.has_value()) {
    RETURN_IF_ERROR(ParameterServerStep(step, result));
    result.replica_loss_sum = model_->LossSum();
    if (!share_loss_) {
      result.loss = std::numeric_limits<double>::quiet_NaN();
      return result;
    }
    ASSIGN_OR_RETURN(const double loss_sum, ShareLoss(result.replica_loss_sum));
    result.loss = loss_sum / global_tokens;
    return result;
  }
  comm::Communicator* model_parallel = comms_.model_parallel.get();
  // Under ZeRO each replica holds the gradients of its own windows only: the
  // squares are summed over dp too (every element counted once, by its owner).
  comm::Communicator* dp = optimizer_->sharded() ? comms_.dp.get() : nullptr;
  ASSIGN_OR_RETURN(result.grad_norm,
                   optimizer_->GradientNorm(ctx_, [model_parallel, dp](double& sum_of_squares) {
                     if (model_parallel->size() == 1 && dp == nullptr) return absl::OkStatus();
                     float partial = static_cast<float>(sum_of_squares);
                     for (comm::Communicator* group : {model_parallel, dp}) {
                       if (group == nullptr || group->size() == 1) continue;
                       RETURN_IF_ERROR(group->AllReduce(comm::Buffer{&partial, 1, DType::kFloat32},
                                                        comm::ReduceOp::kSum));
                     }
                     sum_of_squares = partial;
                     return absl::OkStatus();
                   }));
  // The schedule counts applied updates: a step fp16's loss scaler skipped
  // does not advance it (as Megatron and DeepSpeed), and the skipped count is
  // checkpointed with the scaler, so a resumed run continues the same way.
  const int64_t applied_steps = loss_scaler_ ? step - loss_scaler_->skipped_steps() : step;
  result.lr = LearningRate(applied_steps, config_.optimizer(), config_.steps());
  if (loss_scaler_) {
    // Every rank reaches the same verdict, so all skip or all step.
    ASSIGN_OR_RETURN(const bool overflow, AnyGradientOverflowed());
    result.loss_scale = loss_scale;
    result.skipped = loss_scaler_->Update(overflow);
    result.skipped_steps = loss_scaler_->skipped_steps();
    if (!result.skipped) {
      // Unscale before clipping: the norm of the true gradients (the scale
      // is a power of two, so the division is exact), and one factor that
      // both unscales and clips.
      result.grad_norm /= loss_scale;
      const float clip = ClipScale(result.grad_norm, config_.optimizer().grad_clip());
      optimizer_->Step(ctx_, result.lr, static_cast<float>(clip / loss_scale));
    }
  } else {
    if (!std::isfinite(result.grad_norm)) {
      return absl::InternalError(absl::StrCat("step ", step + 1, ": the gradient norm is ",
                                              result.grad_norm, "; stopping rather than stepping"));
    }
    optimizer_->Step(ctx_, result.lr, ClipScale(result.grad_norm, config_.optimizer().grad_clip()));
  }
  // ZeRO: every replica updated its windows; share the values.
  RETURN_IF_ERROR(reducer_->GatherParameters(ctx_));
  // Local SGD and gossip: the replicas, which stepped alone, meet.
  RETURN_IF_ERROR(replica_sync_->AfterStep(*comms_.dp, step));
  if (replica_sync_->MixesAfter(step)) optimizer_->CopyMastersToValues(ctx_);
  ASSIGN_OR_RETURN(const double loss_sum, ShareLoss(model_->LossSum()));
  result.loss = loss_sum / global_tokens;
  return result;
}

absl::Status StepRunner::ParameterServerStep(int64_t step, StepResult& result) {
  // The flat vector in the optimizer's parameter order, the order of the
  // servers' segments (PsSegmentsOf over the same list).
  const ParameterList& params = optimizer_->params();
  int64_t offset = 0;
  for (const Parameter* p : params) {
    const int64_t n = p->grad.numel();
    std::memcpy(ps_gradient_.data() + offset, p->grad.data<float>(), n * sizeof(float));
    offset += n;
  }
  RETURN_IF_ERROR(ps_worker_->PushAndPull(*ps_world_, ps_gradient_, absl::MakeSpan(ps_values_)));
  // The fp32 values AdamW would have updated: the parameters' values, or
  // under bf16 the masters, which are then rounded into the values.
  const std::vector<Tensor> values = optimizer_->Fp32Values();
  offset = 0;
  for (const Tensor& v : values) {
    v.CopyFrom(absl::MakeConstSpan(ps_values_).subspan(offset, v.numel()));
    offset += v.numel();
  }
  optimizer_->CopyMastersToValues(ctx_);
  result.lr = LearningRate(step, config_.optimizer(), config_.steps());
  result.grad_norm = std::numeric_limits<double>::quiet_NaN();
  return absl::OkStatus();
}

absl::Status StepRunner::SkipLossShare() {
  if (!ps_worker_.has_value()) {
    return absl::FailedPreconditionError(
        "StepRunner::SkipLossShare needs layout.dp_sync=ps (one pipeline stage, whose loss is "
        "the replica's)");
  }
  share_loss_ = false;
  return absl::OkStatus();
}

absl::Status StepRunner::StartParameterServers(int64_t first_step, int64_t steps,
                                               std::vector<int64_t> snapshot_versions) {
  if (!ps_worker_.has_value()) {
    return absl::FailedPreconditionError("StartParameterServers needs layout.dp_sync=ps");
  }
  if (ps_world_->rank() != 0) return absl::OkStatus();
  data_parallel::PsStart start;
  start.first_step = first_step;
  start.steps = steps;
  start.snapshot_versions = std::move(snapshot_versions);
  const ParameterList& params = optimizer_->params();
  start.segments = PsSegmentsOf(params);
  const std::vector<Tensor> values = optimizer_->Fp32Values();
  const auto append = [](const Tensor& tensor, std::vector<float>& flat) {
    const std::vector<float> v = tensor.ToVector<float>();
    flat.insert(flat.end(), v.begin(), v.end());
  };
  for (size_t i = 0; i < params.size(); ++i) {
    append(values[i], start.values);
    append(optimizer_->exp_avg(static_cast<int>(i)), start.exp_avg);
    append(optimizer_->exp_avg_sq(static_cast<int>(i)), start.exp_avg_sq);
  }
  return data_parallel::SendPsStart(*ps_world_, PsOptionsFor(config_, steps), start);
}

absl::Status StepRunner::StopParameterServers() {
  if (!ps_worker_.has_value()) {
    return absl::FailedPreconditionError("StopParameterServers needs layout.dp_sync=ps");
  }
  return ps_worker_->Stop(*ps_world_);
}

absl::Status StepRunner::PullParameterServerState(int64_t optimizer_step) {
  if (!ps_worker_.has_value()) {
    return absl::FailedPreconditionError("PullParameterServerState needs layout.dp_sync=ps");
  }
  const int64_t elements = static_cast<int64_t>(ps_values_.size());
  std::vector<float> exp_avg(elements), exp_avg_sq(elements);
  RETURN_IF_ERROR(ps_worker_->PullState(*ps_world_, absl::MakeSpan(ps_values_),
                                        absl::MakeSpan(exp_avg), absl::MakeSpan(exp_avg_sq)));
  const std::vector<Tensor> values = optimizer_->Fp32Values();
  int64_t offset = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t n = values[i].numel();
    values[i].CopyFrom(absl::MakeConstSpan(ps_values_).subspan(offset, n));
    optimizer_->exp_avg(static_cast<int>(i)).CopyFrom(absl::MakeConstSpan(exp_avg).subspan(offset, n));
    optimizer_->exp_avg_sq(static_cast<int>(i))
        .CopyFrom(absl::MakeConstSpan(exp_avg_sq).subspan(offset, n));
    offset += n;
  }
  optimizer_->CopyMastersToValues(ctx_);
  optimizer_->set_step(optimizer_step);
  return absl::OkStatus();
}

absl::Status StepRunner::ShareRestoredValues() {
  if (!optimizer_->has_masters() || !optimizer_->sharded()) return absl::OkStatus();
  return reducer_->GatherParameters(ctx_);
}

absl::StatusOr<bool> StepRunner::AnyGradientOverflowed() {
  float overflow = optimizer_->GradientsFinite(ctx_) ? 0.0f : 1.0f;
  for (comm::Communicator* group : {comms_.model_parallel.get(), comms_.dp.get()}) {
    if (group == nullptr || group->size() == 1) continue;
    RETURN_IF_ERROR(
        group->AllReduce(comm::Buffer{&overflow, 1, DType::kFloat32}, comm::ReduceOp::kMax));
  }
  return overflow != 0.0f;
}

absl::StatusOr<double> StepRunner::EvaluateLossSum(const Tensor& inputs, const Tensor& targets) {
  model_->SetMicroBatches(inputs, targets, config_.layout().micro_batch_size(), 0.0f,
                          /*forward_only=*/true);
  RETURN_IF_ERROR(pipeline::RunStageSchedule(forward_schedule_, coordinates_.pp, *model_,
                                             comms_.pp.get()));
  return ShareLoss(model_->LossSum());
}

absl::StatusOr<std::vector<NamedTensor>> StepRunner::GatherSerial(bool gradients) {
  // ZeRO keeps only this replica's windows of the summed gradients.
  if (gradients) RETURN_IF_ERROR(reducer_->GatherGradients());
  // ZeRO 3 keeps only this replica's windows of the values: every replica
  // takes part in gathering them, for the duration of the export.
  if (!gradients) RETURN_IF_ERROR(reducer_->GatherAllParameters());
  absl::StatusOr<std::vector<NamedTensor>> tensors = std::vector<NamedTensor>();
  if (coordinates_.dp == 0) {
    tensors = GatherModelTensors(ctx_, *model_, tp::TpGroup(comms_.tp.get()), comms_.pp.get(),
                                 config_.model().vocab_size(), gradients);
  }
  if (!gradients) reducer_->ReleaseAllParameters();
  return tensors;
}

RankMemory StepRunner::MemoryInUse() {
  RankMemory memory;
  // Under ZeRO 3 the values live in the reducer's shards (and whatever is
  // gathered at the moment); otherwise in the parameters' own tensors.
  memory.param_bytes = reducer_->peak_parameter_bytes();
  memory.grad_bytes = reducer_->gradient_bytes();
  // Mixed precision: the fp32 masters are optimizer state too.
  memory.optimizer_state_bytes = optimizer_->state_bytes() + optimizer_->master_bytes();
  memory.activation_peak_bytes = model_->peak_stash_bytes();
  return memory;
}

}  // namespace trident::training
