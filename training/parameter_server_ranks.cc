#include "training/parameter_server_ranks.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"
#include "training/lr_schedule.h"
#include "training/optimizer.h"
#include "training/stage_model.h"

namespace trident::training {
namespace {

int Workers(const topology::ParallelLayout& layout) {
  return layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel();
}

bool IsPs(const topology::ParallelLayout& layout) {
  return layout.dp_sync() == topology::DpSync::PS;
}

}  // namespace

int JobWorldSize(const topology::ParallelLayout& layout) {
  return Workers(layout) + (IsPs(layout) ? layout.ps_servers() : 0);
}

bool IsParameterServerRank(const topology::ParallelLayout& layout, int rank) {
  return IsPs(layout) && rank >= Workers(layout);
}

std::string JobWorldRule(const topology::ParallelLayout& layout) {
  if (!IsPs(layout)) return "tp x pp x dp";
  return absl::StrCat("tp x pp x dp workers + ps_servers = ", Workers(layout), " + ",
                      layout.ps_servers());
}

data_parallel::PsOptions PsOptionsFor(const TrainConfig& config, int64_t steps) {
  const topology::ParallelLayout& layout = config.layout();
  return {.workers = Workers(layout),
          .servers = layout.ps_servers(),
          .staleness = layout.ps_staleness(),
          .steps = steps,
          .grad_clip = config.optimizer().grad_clip()};
}

std::vector<data_parallel::PsSegment> PsSegmentsOf(const ParameterList& params) {
  std::vector<data_parallel::PsSegment> segments;
  segments.reserve(params.size());
  for (const Parameter* p : params) {
    segments.push_back({.length = p->value.numel(), .weight_decay = p->weight_decay});
  }
  return segments;
}

absl::StatusOr<std::unique_ptr<comm::Communicator>> CreateWorkerGroup(
    const topology::ParallelLayout& layout, comm::Communicator& world) {
  std::vector<int> workers(Workers(layout));
  std::iota(workers.begin(), workers.end(), 0);
  return world.CreateGroup(workers, "ps_workers");
}

absl::Status ServeParameters(const TrainConfig& config, int64_t steps, comm::Communicator& world) {
  const topology::ParallelLayout& layout = config.layout();
  const data_parallel::PsOptions options = PsOptionsFor(config, steps);
  const int server = world.rank() - options.workers;
  std::vector<int> server_ranks(options.servers);
  std::iota(server_ranks.begin(), server_ranks.end(), options.workers);
  ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> servers,
                   world.CreateGroup(server_ranks, "ps_servers"));
  // The initial values, exactly as a worker's model holds them (the same
  // layout, stage and seed): fp32, since the workers' fp32 masters under
  // mixed precision are copies of these.
  std::vector<float> initial;
  std::vector<data_parallel::PsSegment> segments;
  {
    const ExecContext ctx = ExecContext::Cpu();
    ASSIGN_OR_RETURN(std::unique_ptr<StageModel> model,
                     StageModel::Create(config.model(), layout, /*pipeline_stage=*/0,
                                        tp::TpGroup(), ctx));
    model->Initialize(static_cast<uint64_t>(config.seed()));
    const ParameterList params = model->parameters();
    segments = PsSegmentsOf(params);
    for (const Parameter* p : params) {
      const Tensor& v = p->value;
      if (v.dtype() != DType::kFloat32) {
        return absl::InternalError(absl::StrCat("parameter server: ", p->name, " is ",
                                                DTypeName(v.dtype()), ", not fp32"));
      }
      const std::vector<float> values = v.ToVector<float>();
      initial.insert(initial.end(), values.begin(), values.end());
    }
  }
  const AdamWSettings settings = AdamWSettingsFrom(config.optimizer());
  ops::AdamWOptions adamw;
  adamw.beta1 = settings.beta1;
  adamw.beta2 = settings.beta2;
  adamw.epsilon = settings.epsilon;
  adamw.weight_decay = settings.weight_decay;
  const OptimizerConfig optimizer = config.optimizer();
  const int64_t total_steps = config.steps();
  ASSIGN_OR_RETURN(data_parallel::PsServer ps,
                   data_parallel::PsServer::Create(
                       options, server, initial, std::move(segments), adamw,
                       [optimizer, total_steps](int64_t clock) {
                         return LearningRate(clock, optimizer, total_steps);
                       }));
  initial.clear();
  initial.shrink_to_fit();
  return ps.Serve(world, servers.get());
}

}  // namespace trident::training
