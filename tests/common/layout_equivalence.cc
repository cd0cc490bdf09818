#include "tests/common/layout_equivalence.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/check.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "core/tensor_comm.h"
#include "gtest/gtest.h"
#include "topology/grid_communicators.h"
#include "topology/layout_names.h"
#include "topology/layout_validation.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/parameter_server_ranks.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/precision.h"
#include "training/train_config.h"

namespace trident::testing {
namespace {

constexpr uint64_t kSeed = 20261122;

// The held-out batch's step number: no training step uses it.
constexpr int64_t kValidationStep = 1 << 30;

TensorsByName ByName(const std::vector<training::NamedTensor>& tensors) {
  TensorsByName out;
  for (const training::NamedTensor& t : tensors) out[t.name] = t.tensor.ToVector<float>();
  return out;
}

}  // namespace

topology::ParallelLayout LayoutRow::ToLayout() const {
  topology::ParallelLayout layout;
  layout.set_tensor_parallel(tp);
  layout.set_pipeline_parallel(pp);
  layout.set_data_parallel(dp);
  layout.set_micro_batch_size(micro_batch_size);
  layout.set_num_micro_batches(micro_batches);
  layout.set_schedule(schedule);
  layout.set_virtual_pipeline_stages(virtual_stages);
  layout.set_sequence_parallel(sequence_parallel);
  for (int layers : layers_per_stage) layout.add_layers_per_stage(layers);
  layout.set_overlap_grad_reduce(overlap_grad_reduce);
  layout.set_grad_bucket_mb(static_cast<float>(grad_bucket_mb));
  layout.set_zero_stage(zero_stage);
  layout.set_cpu_offload(cpu_offload);
  layout.set_recompute(recompute);
  layout.set_dp_allreduce(dp_allreduce);
  if (ps_servers > 0) {
    layout.set_dp_sync(topology::DpSync::PS);
    layout.set_ps_servers(ps_servers);
    layout.set_ps_staleness(0);
  }
  return layout;
}

training::TrainConfig LayoutRow::ToConfig(int steps) const {
  training::TrainConfig config = EquivalenceConfig(ToLayout(), steps);
  config.mutable_model()->set_num_heads(heads);
  config.mutable_model()->set_context_length(seq_length);
  config.mutable_data()->set_seq_length(seq_length);
  config.set_precision(precision);
  return config;
}

std::string LayoutRow::Name() const {
  std::string name = LayoutName(ToLayout());
  if (heads != 4) absl::StrAppend(&name, "_h", heads);
  if (seq_length != 16) absl::StrAppend(&name, "_t", seq_length);
  if (precision != training::FP32) absl::StrAppend(&name, "_", training::PrecisionName(precision));
  return name;
}

std::string LayoutName(const topology::ParallelLayout& l) {
  std::string name = absl::StrCat("tp", l.tensor_parallel(), "_pp", l.pipeline_parallel(), "_dp",
                                  l.data_parallel(), "_mbs", l.micro_batch_size(), "_m",
                                  l.num_micro_batches(), "_",
                                  absl::StrReplaceAll(topology::ScheduleName(l.schedule()),
                                                      {{"-", ""}}));
  if (l.virtual_pipeline_stages() > 1) absl::StrAppend(&name, "_v", l.virtual_pipeline_stages());
  if (l.sequence_parallel()) absl::StrAppend(&name, "_sp");
  if (!l.overlap_grad_reduce()) absl::StrAppend(&name, "_nooverlap");
  if (l.zero_stage() > 0) absl::StrAppend(&name, "_zero", l.zero_stage());
  if (l.cpu_offload()) absl::StrAppend(&name, "_offload");
  if (l.recompute() != topology::Recompute::NONE) {
    absl::StrAppend(&name, "_recompute_", topology::RecomputeName(l.recompute()));
  }
  if (l.dp_allreduce() != topology::DpAllReduce::NATIVE) {
    absl::StrAppend(&name, "_", topology::DpAllReduceName(l.dp_allreduce()));
  }
  if (l.grad_bucket_mb() != 25.0f) {
    absl::StrAppend(&name, "_bucket",
                    absl::StrReplaceAll(absl::StrCat(l.grad_bucket_mb()), {{".", "p"}}));
  }
  if (l.layers_per_stage_size() > 0) {
    absl::StrAppend(&name, "_split", absl::StrJoin(l.layers_per_stage(), "x"));
  }
  if (l.dp_sync() == topology::DpSync::PS) absl::StrAppend(&name, "_ps", l.ps_servers());
  return name;
}

training::TrainConfig EquivalenceConfig(const topology::ParallelLayout& layout, int steps) {
  training::TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(61);
  model->set_context_length(16);
  model->set_num_layers(8);
  model->set_num_heads(4);
  model->set_hidden_size(32);
  *config.mutable_layout() = layout;
  config.mutable_data()->set_seq_length(16);
  auto* optimizer = config.mutable_optimizer();
  optimizer->set_learning_rate(1e-3);
  optimizer->set_min_learning_rate(1e-4);
  optimizer->set_warmup_steps(2);
  optimizer->set_weight_decay(0.1);
  optimizer->set_grad_clip(0.5);
  optimizer->set_epsilon(1e-6);
  config.set_steps(steps);
  config.set_seed(static_cast<int64_t>(kSeed));
  return config;
}

Tolerances EquivalenceTolerance(const training::TrainConfig& config) {
  const bool split = config.layout().tensor_parallel() > 1;
  switch (config.precision()) {
    case training::BF16:
      return split ? Tolerances{.loss = 5e-4, .gradients = 3e-2, .parameters = 1.2e-1}
                   : Tolerances{.loss = 1e-4, .gradients = 1e-5, .parameters = 2e-2};
    case training::FP16:
      return split ? Tolerances{.loss = 5e-5, .gradients = 5e-3, .parameters = 2e-2}
                   : Tolerances{.loss = 2e-5, .gradients = 1e-5, .parameters = 3e-3};
    case training::FP32:
      break;
  }
  return {};
}

topology::ParallelLayout SerialTwin(const topology::ParallelLayout& layout) {
  topology::ParallelLayout serial;
  serial.set_micro_batch_size(layout.micro_batch_size());
  serial.set_num_micro_batches(layout.num_micro_batches() * layout.data_parallel());
  return serial;
}

absl::Status RunRanks(const training::TrainConfig& config,
                      const std::function<absl::Status(RankRun&)>& body) {
  const topology::ParallelLayout& layout = config.layout();
  const int world_size =
      layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel();
  ASSIGN_OR_RETURN(const topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(layout, world_size));
  const training::BatchGeometry batch = training::BatchGeometry::Of(config);
  // dp_sync=ps: the server ranks follow the grid's (training/parameter_server_ranks.h),
  // serve for config.steps() clocks, and never run `body`.
  const bool ps = layout.dp_sync() == topology::DpSync::PS;
  return comm::RunLocalRanks(training::JobWorldSize(layout), [&](int rank,
                                                                 comm::Communicator& world) {
    if (training::IsParameterServerRank(layout, rank)) {
      return training::ServeParameters(config, world);
    }
    std::unique_ptr<comm::Communicator> workers;
    if (ps) {
      ASSIGN_OR_RETURN(workers, training::CreateWorkerGroup(layout, world));
    }
    const ExecContext ctx = ExecContext::Cpu();
    ASSIGN_OR_RETURN(const topology::GridCommunicators comms,
                     topology::BuildGridCommunicators(grid, ps ? *workers : world));
    ASSIGN_OR_RETURN(std::unique_ptr<training::StepRunner> runner,
                     training::StepRunner::Create(config, grid, rank, comms, ctx,
                                                  ps ? &world : nullptr));
    if (ps) RETURN_IF_ERROR(runner->StartParameterServers(0, config.steps(), {}));
    RankRun run{.rank = rank, .grid = grid, .comms = comms, .batch = batch, .runner = *runner};
    return body(run);
  });
}

absl::StatusOr<TrainedRun> TrainLayout(const training::TrainConfig& config) {
  const topology::ParallelLayout& layout = config.layout();
  const int world_size =
      layout.tensor_parallel() * layout.pipeline_parallel() * layout.data_parallel();
  // The layout rules only: the synthetic tokens need no tokenizer or files.
  RETURN_IF_ERROR(topology::ValidateLayout(
      layout, world_size,
      training::ModelDimensionsFor(config.model(), config.data().seq_length())));
  const int64_t vocab = config.model().vocab_size();
  const int steps = config.steps();
  TrainedRun result;
  result.peak_stash_bytes.assign(layout.pipeline_parallel(), 0);
  RETURN_IF_ERROR(RunRanks(config, [&](RankRun& r) -> absl::Status {
    const int rank = r.rank;
    const training::BatchGeometry& batch = r.batch;
    training::StepRunner* runner = &r.runner;
    const data::RowRange rows = batch.ReplicaRows(r.grid.CoordinatesOf(rank).dp);
    Tensor inputs, targets;
    for (int step = 0; step < steps; ++step) {
      training::SyntheticRows(kSeed, step, rows, batch.seq_length, vocab, &inputs, &targets);
      ASSIGN_OR_RETURN(const training::StepResult step_result,
                       runner->TrainStep(step, inputs, targets, batch.tokens_per_step()));
      if (rank == 0) result.losses.push_back(step_result.loss);
      if (step == 0) {
        if (layout.dp_sync() == topology::DpSync::PS) {
          // The summed gradient lives on the servers only: add the workers'
          // gradients over dp here (rank order, as the servers add them).
          for (Parameter* p : runner->optimizer().params()) {
            RETURN_IF_ERROR(r.comms.dp->AllReduce(AsCommBuffer(p->grad), comm::ReduceOp::kSum));
          }
        }
        ASSIGN_OR_RETURN(std::vector<training::NamedTensor> grads,
                         runner->GatherSerial(/*gradients=*/true));
        if (rank == 0) result.grads_after_step1 = ByName(grads);
      }
    }
    const topology::Coordinates at = r.grid.CoordinatesOf(rank);
    if (at.tp == 0 && at.dp == 0) {
      result.peak_stash_bytes[at.pp] = runner->model().peak_stash_bytes();
    }
    ASSIGN_OR_RETURN(std::vector<training::NamedTensor> values,
                     runner->GatherSerial(/*gradients=*/false));
    if (rank == 0) result.params_after_last = ByName(values);
    training::SyntheticRows(kSeed, kValidationStep, rows, batch.seq_length, vocab, &inputs,
                            &targets);
    ASSIGN_OR_RETURN(const double val_loss_sum, runner->EvaluateLossSum(inputs, targets));
    if (rank == 0) result.val_loss = val_loss_sum / batch.tokens_per_step();
    return absl::OkStatus();
  }));
  return result;
}

double LossDrop(const std::vector<double>& losses) {
  if (losses.size() < 5) return NAN;
  const double last5 = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5;
  return losses.front() - last5;
}

LossCurve TrainLossCurve(const training::TrainConfig& config, const std::string& name) {
  absl::StatusOr<TrainedRun> run = TrainLayout(config);
  EXPECT_TRUE(run.ok()) << name << ": " << run.status();
  if (!run.ok()) return {};
  const std::vector<double>& losses = run->losses;
  EXPECT_EQ(losses.size(), static_cast<size_t>(config.steps())) << name;
  for (size_t s = 0; s < losses.size(); ++s) {
    EXPECT_TRUE(std::isfinite(losses[s])) << name << " step " << s + 1;
  }
  const LossCurve curve{.losses = losses, .drop = LossDrop(losses)};
  if (!losses.empty()) {
    std::printf("%-22s first loss %.4f, mean of last 5 %.4f, drop %.4f\n", name.c_str(),
                losses.front(), losses.front() - curve.drop, curve.drop);
  }
  return curve;
}

const TrainedRun& SerialRun(const training::TrainConfig& config) {
  static std::mutex mu;
  static auto* runs = new std::map<std::string, TrainedRun>();
  training::TrainConfig serial = config;
  *serial.mutable_layout() = SerialTwin(config.layout());
  const std::string key = serial.SerializeAsString();
  std::lock_guard<std::mutex> lock(mu);
  auto it = runs->find(key);
  if (it == runs->end()) {
    absl::StatusOr<TrainedRun> run = TrainLayout(serial);
    TRIDENT_CHECK_OK(run.status());
    it = runs->emplace(key, *std::move(run)).first;
  }
  return it->second;
}

Differences ExpectSameTraining(const TrainedRun& run, const TrainedRun& serial,
                               const training::TrainConfig& config, double tolerance) {
  return ExpectSameTraining(run, serial, config,
                            Tolerances{.loss = tolerance, .gradients = tolerance,
                                       .parameters = tolerance});
}

Differences ExpectSameTraining(const TrainedRun& run, const TrainedRun& serial,
                               const training::TrainConfig& config, const Tolerances& tolerances) {
  const double tolerance = tolerances.loss;
  Differences worst;
  const auto relative = [](double got, double want) { return std::abs(got - want) / std::abs(want); };
  EXPECT_EQ(run.losses.size(), serial.losses.size());
  for (size_t s = 0; s < std::min(run.losses.size(), serial.losses.size()); ++s) {
    const double difference = relative(run.losses[s], serial.losses[s]);
    if (!(difference <= worst.loss)) worst.loss = difference;
    EXPECT_LT(difference, tolerance)
        << "step " << s + 1 << ": loss " << run.losses[s] << ", serial " << serial.losses[s];
  }
  const int64_t hidden = config.model().hidden_size();
  ExpectSameTensors(run.grads_after_step1, serial.grads_after_step1, "gradients after step 1",
                    hidden, /*key_bias_out=*/false, tolerances.gradients, &worst.gradients);
  ExpectSameTensors(run.params_after_last, serial.params_after_last,
                    absl::StrCat("parameters after step ", config.steps()), hidden,
                    /*key_bias_out=*/true, tolerances.parameters, &worst.parameters);
  worst.val_loss = relative(run.val_loss, serial.val_loss);
  EXPECT_LT(worst.val_loss, tolerance)
      << "validation loss " << run.val_loss << ", serial " << serial.val_loss;
  return worst;
}

}  // namespace trident::testing
