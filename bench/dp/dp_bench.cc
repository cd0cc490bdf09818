// Data-parallel benchmark (bench/dp/README.md): for dp in {2, 4} on one
// model (local backend, ranks are threads of this process), per ZeRO stage
// and with the bucket reduction overlapped with the backward or not:
//   - the median step time;
//   - the median time of the gradient communication alone (the same buckets
//     reduced with no compute around them);
//   - hidden fraction = (step without overlap - step with overlap) / comm alone;
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
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "data_parallel/grad_buckets.h"
#include "topology/grid_communicators.h"
#include "topology/process_grid.h"
#include "training/batch_geometry.h"
#include "training/step_runner.h"
#include "training/synthetic_batch.h"
#include "training/train_config.pb.h"

ABSL_FLAG(int, layers, 8, "transformer layers");
ABSL_FLAG(int, hidden, 256, "hidden size");
ABSL_FLAG(int, seq, 128, "tokens per sequence");
ABSL_FLAG(int, micro_batches, 2, "micro-batches per replica and step");
ABSL_FLAG(double, bucket_mb, 1.0, "gradient bucket size in MiB");
ABSL_FLAG(int, steps, 5, "timed steps per configuration (after one warm-up step)");
ABSL_FLAG(std::vector<std::string>, zero_stages, std::vector<std::string>({"0", "1", "2", "3"}),
          "ZeRO stages to measure");

namespace trident {
namespace {

struct Measured {
  double step_seconds = 0;  // Median.
  double comm_seconds = 0;  // Median, buckets alone.
  comm::CommStats dp_stats;   // One step, rank 0.
  int64_t bucket_bytes = 0;   // Padded buckets, rank 0.
  int64_t gradient_bytes = 0;
  int64_t state_bytes = 0;
  int64_t parameter_bytes = 0;      // Between steps.
  int64_t peak_gathered_bytes = 0;  // ZeRO 3, during a step.
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

absl::StatusOr<Measured> Run(int dp, int zero_stage, bool overlap) {
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
  layout->set_overlap_grad_reduce(overlap);
  layout->set_grad_bucket_mb(static_cast<float>(absl::GetFlag(FLAGS_bucket_mb)));
  layout->set_zero_stage(zero_stage);
  config.mutable_data()->set_seq_length(absl::GetFlag(FLAGS_seq));
  config.mutable_optimizer()->set_learning_rate(1e-4);
  const int steps = absl::GetFlag(FLAGS_steps);
  config.set_steps(steps + 1);
  ASSIGN_OR_RETURN(const topology::ProcessGrid grid, topology::ProcessGrid::Create(*layout, dp));
  const training::BatchGeometry batch = training::BatchGeometry::Of(config);
  Measured result;
  RETURN_IF_ERROR(comm::RunLocalRanks(dp, [&](int rank, comm::Communicator& world) -> absl::Status {
    const ExecContext ctx = ExecContext::Cpu();
    ASSIGN_OR_RETURN(const topology::GridCommunicators comms,
                     topology::BuildGridCommunicators(grid, world));
    ASSIGN_OR_RETURN(std::unique_ptr<training::StepRunner> runner,
                     training::StepRunner::Create(config, grid, rank, comms, ctx));
    Tensor inputs, targets;
    std::vector<double> step_times;
    for (int step = 0; step <= steps; ++step) {
      training::SyntheticRows(1, step, batch.ReplicaRows(rank), batch.seq_length,
                              config.model().vocab_size(), &inputs, &targets);
      RETURN_IF_ERROR(world.Barrier());
      comms.dp->ResetStats();
      std::vector<std::string> log;
      if (step == 0) runner->gradient_reducer().set_event_log(&log);
      const absl::Time start = absl::Now();
      RETURN_IF_ERROR(runner->TrainStep(step, inputs, targets, batch.tokens_per_step()).status());
      if (step > 0) step_times.push_back(absl::ToDoubleSeconds(absl::Now() - start));
      if (step == 0 && rank == 0) result.dp_stats = comms.dp->stats();
      if (step == 0) {
        runner->gradient_reducer().set_event_log(nullptr);
        // ZeRO 3: the most gathered values held at once.
        const auto& buckets = runner->gradient_reducer().buckets();
        int64_t held = 0;
        std::set<int> gathered;
        for (const std::string& e : log) {
          int k = 0;
          if (absl::StartsWith(e, "gather ") && absl::SimpleAtoi(e.substr(7), &k)) {
            if (gathered.insert(k).second) held += buckets[k].value_shard.nbytes() * dp;
          } else if (absl::StartsWith(e, "release ") && absl::SimpleAtoi(e.substr(8), &k)) {
            if (gathered.erase(k) > 0) held -= buckets[k].value_shard.nbytes() * dp;
          }
          if (rank == 0) result.peak_gathered_bytes = std::max(result.peak_gathered_bytes, held);
        }
      }
    }
    // The same buckets reduced with nothing else running.
    data_parallel::GradientReducer& reducer = runner->gradient_reducer();
    std::vector<double> comm_times;
    for (int i = 0; i < steps; ++i) {
      RETURN_IF_ERROR(world.Barrier());
      const absl::Time start = absl::Now();
      reducer.BeginStep();
      RETURN_IF_ERROR(reducer.Finish());
      comm_times.push_back(absl::ToDoubleSeconds(absl::Now() - start));
    }
    if (rank == 0) {
      result.step_seconds = Median(step_times);
      result.comm_seconds = Median(comm_times);
      for (const auto& b : reducer.buckets()) {
        result.bucket_bytes += b.shard.defined() ? b.shard.nbytes() * dp : b.buffer.nbytes();
      }
      result.gradient_bytes = reducer.gradient_bytes();
      result.state_bytes = runner->optimizer().state_bytes();
      result.parameter_bytes = reducer.parameter_bytes();
    }
    return absl::OkStatus();
  }));
  return result;
}

int Main() {
  std::printf("model: %d layers, hidden %d, seq %d, %d micro-batches of 1 per replica, %.2f MiB "
              "buckets; local backend\n",
              absl::GetFlag(FLAGS_layers), absl::GetFlag(FLAGS_hidden), absl::GetFlag(FLAGS_seq),
              absl::GetFlag(FLAGS_micro_batches), absl::GetFlag(FLAGS_bucket_mb));
  for (int dp : {2, 4}) {
    for (const std::string& stage : absl::GetFlag(FLAGS_zero_stages)) {
      int zero = 0;
      if (!absl::SimpleAtoi(stage, &zero)) {
        std::fprintf(stderr, "--zero_stages: '%s' is not a number\n", stage.c_str());
        return 1;
      }
      absl::StatusOr<Measured> off = Run(dp, zero, /*overlap=*/false);
      absl::StatusOr<Measured> on = Run(dp, zero, /*overlap=*/true);
      if (!off.ok() || !on.ok()) {
        std::fprintf(stderr, "dp=%d zero=%d: %s %s\n", dp, zero, off.status().ToString().c_str(),
                     on.status().ToString().c_str());
        return 1;
      }
      // Stages 2 and 3 reduce inside the backward either way (per
      // micro-batch): no "communication alone" to compare with.
      const double hidden =
          zero >= 2 ? 0.0 : (off->step_seconds - on->step_seconds) / off->comm_seconds;
      const comm::CommStats& s = on->dp_stats;
      const int64_t counted = s.bytes_of(comm::CommOp::kAllReduce) +
                              s.bytes_of(comm::CommOp::kReduceScatter) +
                              s.bytes_of(comm::CommOp::kAllGather);
      // ShareLoss all-gathers dp doubles; ZeRO adds a 4-byte norm all-reduce.
      // Stage 2 reduce-scatters every micro-batch's buckets.
      const int m = absl::GetFlag(FLAGS_micro_batches);
      // Stage 3: 2 m all-gathers of the values and m reduce-scatters.
      const int64_t analytic =
          (zero == 0 ? 1 : zero == 1 ? 2 : zero == 2 ? m + 1 : 3 * m) * on->bucket_bytes +
          8 * dp + (zero ? 4 : 0);
      const double wire = (zero == 2 ? m + 1.0 : zero == 3 ? 3.0 * m : 2.0) * (dp - 1) / dp *
                          on->bucket_bytes;
      // Measured wire bytes per rank: a ring moves (d - 1) / d of every
      // reduce-scatter's and all-gather's payload and 2 (d - 1) / d of an
      // all-reduce's (the loss and norm's few bytes included).
      const double measured_wire =
          (2.0 * s.bytes_of(comm::CommOp::kAllReduce) + s.bytes_of(comm::CommOp::kReduceScatter) +
           s.bytes_of(comm::CommOp::kAllGather)) *
          (dp - 1) / dp;
      const double plain_wire = 2.0 * (dp - 1) / dp * on->bucket_bytes;
      std::printf(
          "dp=%d zero=%d: step %.1f ms without overlap, %.1f ms with; gradient comm alone "
          "%.1f ms; hidden fraction %.2f\n"
          "  dp payload per step %lld B (analytic %lld B), ring wire bytes per rank %.0f B "
          "(analytic %.0f B, %.2fx plain all-reduce's); per rank: parameters %lld B (peak "
          "gathered %lld B), gradients %lld B, AdamW state %lld B\n",
          dp, zero, 1e3 * off->step_seconds, 1e3 * on->step_seconds, 1e3 * off->comm_seconds,
          hidden, static_cast<long long>(counted), static_cast<long long>(analytic),
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
