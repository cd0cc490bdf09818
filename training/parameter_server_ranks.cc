#include "training/parameter_server_ranks.h"

#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "training/lr_schedule.h"
#include "training/optimizer.h"

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

absl::Status ServeParameters(const TrainConfig& config, comm::Communicator& world) {
  data_parallel::PsOptions options = PsOptionsFor(config, config.steps());
  const int server = world.rank() - options.workers;
  std::vector<int> server_ranks(options.servers);
  std::iota(server_ranks.begin(), server_ranks.end(), options.workers);
  ASSIGN_OR_RETURN(std::unique_ptr<comm::Communicator> servers,
                   world.CreateGroup(server_ranks, "ps_servers"));
  // The values and moments (fresh from the seed, or a checkpoint's) and the
  // steps to run come from worker 0 (StepRunner::StartParameterServers).
  ASSIGN_OR_RETURN(data_parallel::PsStart start,
                   data_parallel::ReceivePsStart(world, options, server));
  const AdamWSettings settings = AdamWSettingsFrom(config.optimizer());
  ops::AdamWOptions adamw;
  adamw.beta1 = settings.beta1;
  adamw.beta2 = settings.beta2;
  adamw.epsilon = settings.epsilon;
  adamw.weight_decay = settings.weight_decay;
  const OptimizerConfig optimizer = config.optimizer();
  const int64_t total_steps = config.steps();
  ASSIGN_OR_RETURN(data_parallel::PsServer ps,
                   data_parallel::PsServer::CreateFromStart(
                       options, server, std::move(start), adamw,
                       [optimizer, total_steps](int64_t step) {
                         return LearningRate(step, optimizer, total_steps);
                       }));
  return ps.Serve(world, servers.get());
}

}  // namespace trident::training
