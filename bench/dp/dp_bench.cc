// Data-parallel benchmark (bench/dp/README.md): for dp in --dp on one model,
// on the `local` backend (ranks are threads of this process) or `mpi` (run
// under `mpirun -np <dp>`, one process per rank), per ZeRO stage and with
// the bucket reduction overlapped with the backward or not:
//   - the median step time;
//   - the median time of the gradient communication alone (the same buckets
//     reduced with no compute around them);
//   - hidden fraction = (step without overlap - step with overlap) / comm alone,
//     the numerator the median over timed iterations of the two variants'
//     difference within the iteration, printed with its quartiles;
//   - payload bytes per step on the dp communicator (CommStats) against the
//     analytic figure (sum of the padded buckets for all-reduce; the same for
//     reduce-scatter and again for all-gather under ZeRO 1; m reduce-scatters
//     and one all-gather under ZeRO 2), and the ring's wire bytes per rank
//     (2 (d - 1) / d x buckets for ZeRO 0 and 1, (m + 1) (d - 1) / d for 2);
//   - gradient and optimizer-state bytes per rank;
//   - ZeRO 3: parameter bytes per rank between steps (the value shards) and
//     the most gathered at once during a step (from the reducer's event
//     log), and the wire bytes against the analytic 1.5 x m x plain
//     all-reduce (per micro-batch an all-gather of the values for F, another
//     for B, a reduce-scatter of the gradients: 3 (d - 1) / d x buckets).
// All in one run, so the figures share the machine's state.

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "data_parallel/grad_buckets.h"
#include "topology/grid_communicators.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/launch.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

ABSL_FLAG(int, layers, 8, "transformer layers");
ABSL_FLAG(int, hidden, 256, "hidden size");
ABSL_FLAG(int, seq, 128, "tokens per sequence");
ABSL_FLAG(int, micro_batches, 2, "micro-batches per replica and step");
ABSL_FLAG(double, bucket_mb, 1.0, "gradient bucket size in MiB");
ABSL_FLAG(int, steps, 5, "timed steps per configuration (after one warm-up step)");
ABSL_FLAG(std::string, backend, "local",
          "local (ranks are threads of this process) or mpi (run under mpirun -np <dp>)");
ABSL_FLAG(std::vector<std::string>, dp, std::vector<std::string>({"2", "4"}),
          "data-parallel sizes to measure (under mpi: the process count only)");
ABSL_FLAG(int, threads, 1, "CPU threads per rank (1 keeps dp 2 within 2 cores)");
ABSL_FLAG(std::vector<std::string>, zero_stages, std::vector<std::string>({"0", "1", "2", "3"}),
          "ZeRO stages to measure");

namespace trident {
namespace {

struct Measured {
  double step_seconds = 0;  // Median.
  double comm_seconds = 0;  // Median, buckets alone.
  comm::CommStats dp_stats;   // One step, rank 0.
  int64_t bucket_bytes = 0;   // Padded buckets, rank 0.
  int64_t pooled_bytes = 0;   // Of which ZeRO 2-3 reduce per micro-batch (the pool's).
  int64_t gradient_bytes = 0;
  int64_t state_bytes = 0;
  int64_t parameter_bytes = 0;      // Between steps.
  int64_t peak_gathered_bytes = 0;  // ZeRO 3, during a step.
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Overlap off [0] and on [1], measured in one launch.
struct Pair {
  Measured off, on;
  // Per timed step, (step without overlap - step with overlap) of that same
  // iteration (adjacent in time): its median and quartiles, seconds.
  double saving = 0, saving_q1 = 0, saving_q3 = 0;
};

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)];
}

// Both variants train side by side (two StepRunners on the same ranks and
// communicators, same initial model and batches), their steps interleaved
// with each other and with the communication-alone timing, alternating which
// goes first: on a machine whose load changes under it (2 cores shared with
// other builds), a drift then hits all three medians alike.
absl::StatusOr<Pair> Run(int dp, int zero_stage) {
  training::TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(512);
  model->set_context_length(absl::GetFlag(FLAGS_seq));
  model->set_num_layers(absl::GetFlag(FLAGS_layers));
  model->set_num_heads(4);
  model->set_hidden_size(absl::GetFlag(FLAGS_hidden));
  auto* layout = config.mutable_layout();
  layout->set_data_parallel(dp);
  layout->set_micro_batch_size(1);
  layout->set_num_micro_batches(absl::GetFlag(FLAGS_micro_batches));
  layout->set_grad_bucket_mb(static_cast<float>(absl::GetFlag(FLAGS_bucket_mb)));
  layout->set_zero_stage(zero_stage);
  config.mutable_data()->set_seq_length(absl::GetFlag(FLAGS_seq));
  config.mutable_optimizer()->set_learning_rate(1e-4);
  const int steps = absl::GetFlag(FLAGS_steps);
  config.set_steps(steps + 1);
  training::TrainConfig configs[2] = {config, config};
  configs[0].mutable_layout()->set_overlap_grad_reduce(false);
  configs[1].mutable_layout()->set_overlap_grad_reduce(true);
  ASSIGN_OR_RETURN(const topology::ProcessGrid grid, topology::ProcessGrid::Create(*layout, dp));
  const training::BatchGeometry batch = training::BatchGeometry::Of(config);
  Pair result;
  const std::string backend = absl::GetFlag(FLAGS_backend);
  RETURN_IF_ERROR(training::LaunchRanks(backend, dp, [&](int rank, comm::Communicator& world)
                                                         -> absl::Status {
    const ExecContext ctx = ExecContext::Cpu(absl::GetFlag(FLAGS_threads));
    ASSIGN_OR_RETURN(const topology::GridCommunicators comms,
                     topology::BuildGridCommunicators(grid, world));
    std::unique_ptr<training::StepRunner> runners[2];
    for (int v = 0; v < 2; ++v) {
      ASSIGN_OR_RETURN(runners[v], training::StepRunner::Create(configs[v], grid, rank, comms, ctx));
    }
    Measured* measured[2] = {&result.off, &result.on};
    Tensor inputs, targets;
    std::vector<double> step_times[2];
    std::vector<double> comm_times;
    for (int step = 0; step <= steps; ++step) {
      training::SyntheticRows(1, step, batch.ReplicaRows(rank), batch.seq_length,
                              config.model().vocab_size(), &inputs, &targets);
      for (int i = 0; i < 3; ++i) {
        // Order (step even) off, on, comm; (odd) comm, on, off.
        const int what = step % 2 == 0 ? i : 2 - i;
        RETURN_IF_ERROR(world.Barrier());
        if (what == 2) {
          // The same buckets reduced with nothing else running.
          data_parallel::GradientReducer& reducer = runners[0]->gradient_reducer();
          const absl::Time start = absl::Now();
          reducer.BeginStep();
          RETURN_IF_ERROR(reducer.Finish());
          if (step > 0) comm_times.push_back(absl::ToDoubleSeconds(absl::Now() - start));
          continue;
        }
        training::StepRunner& runner = *runners[what];
        comms.dp->ResetStats();
        std::vector<std::string> log;
        if (step == 0) runner.gradient_reducer().set_event_log(&log);
        const absl::Time start = absl::Now();
        RETURN_IF_ERROR(runner.TrainStep(step, inputs, targets, batch.tokens_per_step()).status());
        if (step > 0) step_times[what].push_back(absl::ToDoubleSeconds(absl::Now() - start));
        if (step == 0 && rank == 0) measured[what]->dp_stats = comms.dp->stats();
        if (step == 0) {
          runner.gradient_reducer().set_event_log(nullptr);
          // ZeRO 3: the most gathered values held at once.
          const auto& buckets = runner.gradient_reducer().buckets();
          int64_t held = 0;
          std::set<int> gathered;
          for (const std::string& e : log) {
            int k = 0;
            if (absl::StartsWith(e, "gather ") && absl::SimpleAtoi(e.substr(7), &k)) {
              if (gathered.insert(k).second) held += buckets[k].value_shard.nbytes() * dp;
            } else if (absl::StartsWith(e, "release ") && absl::SimpleAtoi(e.substr(8), &k)) {
              if (gathered.erase(k) > 0) held -= buckets[k].value_shard.nbytes() * dp;
            }
            if (rank == 0) {
              measured[what]->peak_gathered_bytes =
                  std::max(measured[what]->peak_gathered_bytes, held);
            }
          }
        }
      }
    }
    if (rank == 0) {
      std::vector<double> saving;
      for (size_t i = 0; i < step_times[0].size(); ++i) {
        saving.push_back(step_times[0][i] - step_times[1][i]);
      }
      result.saving = Quantile(saving, 0.5);
      result.saving_q1 = Quantile(saving, 0.25);
      result.saving_q3 = Quantile(saving, 0.75);
      for (int v = 0; v < 2; ++v) {
        Measured& m = *measured[v];
        const data_parallel::GradientReducer& reducer = runners[v]->gradient_reducer();
        m.step_seconds = Median(step_times[v]);
        m.comm_seconds = Median(comm_times);
        for (const auto& b : reducer.buckets()) {
          m.bucket_bytes += b.shard.defined() ? b.shard.nbytes() * dp : b.buffer.nbytes();
          if (b.pooled) m.pooled_bytes += b.shard.nbytes() * dp;
        }
        m.gradient_bytes = reducer.gradient_bytes();
        m.state_bytes = runners[v]->optimizer().state_bytes();
        m.parameter_bytes = reducer.parameter_bytes();
      }
    }
    return absl::OkStatus();
  }));
  return result;
}

int Main() {
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (absl::Status s = training::ValidateBackend(backend); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  // Under MPI one runtime for the whole run (MPI cannot be initialised twice);
  // each configuration's LaunchRanks adopts it. Only world rank 0 prints.
  std::unique_ptr<comm::MpiRuntime> mpi;
  std::vector<int> dps;
  if (backend == "mpi") {
    absl::StatusOr<std::unique_ptr<comm::MpiRuntime>> runtime = comm::MpiRuntime::Initialize();
    if (!runtime.ok()) {
      std::fprintf(stderr, "%s\n", runtime.status().ToString().c_str());
      return 1;
    }
    mpi = *std::move(runtime);
    dps.push_back(mpi->world_size());
  } else {
    for (const std::string& value : absl::GetFlag(FLAGS_dp)) {
      int dp = 0;
      if (!absl::SimpleAtoi(value, &dp) || dp < 2) {
        std::fprintf(stderr, "--dp: '%s' is not a data-parallel size >= 2\n", value.c_str());
        return 1;
      }
      dps.push_back(dp);
    }
  }
  const bool printer = mpi == nullptr || mpi->world_rank() == 0;
  if (printer) {
    std::printf("model: %d layers, hidden %d, seq %d, %d micro-batches of 1 per replica, %.2f MiB "
                "buckets; %s backend, %d thread(s) per rank\n",
                absl::GetFlag(FLAGS_layers), absl::GetFlag(FLAGS_hidden), absl::GetFlag(FLAGS_seq),
                absl::GetFlag(FLAGS_micro_batches), absl::GetFlag(FLAGS_bucket_mb),
                backend.c_str(), absl::GetFlag(FLAGS_threads));
  }
  for (int dp : dps) {
    for (const std::string& stage : absl::GetFlag(FLAGS_zero_stages)) {
      int zero = 0;
      if (!absl::SimpleAtoi(stage, &zero)) {
        std::fprintf(stderr, "--zero_stages: '%s' is not a number\n", stage.c_str());
        return 1;
      }
      absl::StatusOr<Pair> pair = Run(dp, zero);
      if (!pair.ok()) {
        std::fprintf(stderr, "dp=%d zero=%d: %s\n", dp, zero, pair.status().ToString().c_str());
        return 1;
      }
      const Measured* off = &pair->off;
      const Measured* on = &pair->on;
      // Stages 2 and 3 reduce inside the backward either way (per
      // micro-batch): no "communication alone" to compare with.
      // The median of the paired per-iteration savings over the median
      // communication time, with the savings' quartiles on the same scale:
      // the spread says how much of the figure is the machine's noise.
      const double hidden = zero >= 2 ? 0.0 : pair->saving / off->comm_seconds;
      const double hidden_q1 = zero >= 2 ? 0.0 : pair->saving_q1 / off->comm_seconds;
      const double hidden_q3 = zero >= 2 ? 0.0 : pair->saving_q3 / off->comm_seconds;
      const comm::CommStats& s = on->dp_stats;
      const int64_t counted = s.bytes_of(comm::CommOp::kAllReduce) +
                              s.bytes_of(comm::CommOp::kReduceScatter) +
                              s.bytes_of(comm::CommOp::kAllGather);
      // ShareLoss all-gathers dp doubles; ZeRO adds a 4-byte norm all-reduce.
      // Stages 2 and 3 reduce-scatter every micro-batch's pooled buckets (the
      // buckets kept in full, such as the tied embedding's, once); stage 3
      // all-gathers the values 2 m times (F and B of every micro-batch).
      const int m = absl::GetFlag(FLAGS_micro_batches);
      const int64_t all = on->bucket_bytes;
      const int64_t per_micro_batch = m * on->pooled_bytes + (all - on->pooled_bytes);
      const int64_t gradient_payload = zero == 0 ? all : zero == 1 ? all : per_micro_batch;
      const int64_t values_payload = zero == 0 ? 0 : zero == 3 ? 2 * m * all : all;
      const int64_t analytic = gradient_payload + values_payload + 8 * dp + (zero ? 4 : 0);
      const double wire =
          (zero == 0 ? 2.0 * all : 1.0 * (gradient_payload + values_payload)) * (dp - 1) / dp;
      // Measured wire bytes per rank: a ring moves (d - 1) / d of every
      // reduce-scatter's and all-gather's payload and 2 (d - 1) / d of an
      // all-reduce's (the loss and norm's few bytes included).
      const double measured_wire =
          (2.0 * s.bytes_of(comm::CommOp::kAllReduce) + s.bytes_of(comm::CommOp::kReduceScatter) +
           s.bytes_of(comm::CommOp::kAllGather)) *
          (dp - 1) / dp;
      const double plain_wire = 2.0 * (dp - 1) / dp * on->bucket_bytes;
      if (!printer) continue;
      std::printf(
          "dp=%d zero=%d: step %.1f ms without overlap, %.1f ms with; gradient comm alone "
          "%.1f ms; hidden fraction %.2f (quartiles %.2f .. %.2f)\n"
          "  dp payload per step %lld B (analytic %lld B), ring wire bytes per rank %.0f B "
          "(analytic %.0f B, %.2fx plain all-reduce's); per rank: parameters %lld B (peak "
          "gathered %lld B), gradients %lld B, AdamW state %lld B\n",
          dp, zero, 1e3 * off->step_seconds, 1e3 * on->step_seconds, 1e3 * off->comm_seconds,
          hidden, hidden_q1, hidden_q3, static_cast<long long>(counted), static_cast<long long>(analytic),
          measured_wire, wire, measured_wire / plain_wire,
          static_cast<long long>(on->parameter_bytes),
          static_cast<long long>(on->peak_gathered_bytes),
          static_cast<long long>(on->gradient_bytes), static_cast<long long>(on->state_bytes));
    }
  }
  return 0;
}

}  // namespace
}  // namespace trident

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return trident::Main();
}
