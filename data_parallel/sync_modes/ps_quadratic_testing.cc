#include "data_parallel/sync_modes/ps_quadratic_testing.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/ops/optimizer.h"
#include "core/status_macros.h"
#include "core/tensor.h"

namespace trident::data_parallel::testing {
namespace {

float Target(int worker, int64_t i) { return std::cos(0.3 * i + worker) * (1 + worker); }

Tensor View(float* data, int64_t n) { return Tensor::FromExternal(data, {n}, DType::kFloat32); }

}  // namespace

std::vector<PsSegment> PsSegments() {
  return {{.length = 20, .weight_decay = true}, {.length = 17, .weight_decay = false}};
}

ops::AdamWOptions PsAdam() {
  ops::AdamWOptions o;
  o.beta1 = 0.9;
  o.beta2 = 0.95;
  o.weight_decay = 0.1;
  return o;
}

double PsLearningRate(int64_t clock) { return 0.05 / (1.0 + 0.01 * clock); }

std::vector<float> PsInitial() {
  std::vector<float> x(kPsElements);
  for (int64_t i = 0; i < kPsElements; ++i) x[i] = std::sin(0.7 * i) * 2.0f;
  return x;
}

std::vector<float> PsGradient(int worker, int workers, absl::Span<const float> x) {
  std::vector<float> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) g[i] = (x[i] - Target(worker, i)) / workers;
  return g;
}

double PsObjective(absl::Span<const float> x, int workers) {
  double f = 0;
  for (int w = 0; w < workers; ++w) {
    for (int64_t i = 0; i < kPsElements; ++i) {
      const double d = x[i] - Target(w, i);
      f += 0.5 * d * d / workers;
    }
  }
  return f;
}

absl::StatusOr<std::vector<std::vector<float>>> SyncRun(comm::Communicator& dp, int64_t steps) {
  std::vector<std::vector<float>> trajectory;
  std::vector<float> x = PsInitial(), m(kPsElements), v(kPsElements);
  const ExecContext ctx = ExecContext::Cpu();
  for (int64_t c = 0; c < steps; ++c) {
    std::vector<float> g = PsGradient(dp.rank(), dp.size(), x);
    RETURN_IF_ERROR(dp.AllReduce(comm::MakeBuffer(absl::MakeSpan(g)), comm::ReduceOp::kSum));
    ops::AdamWOptions o = PsAdam();
    o.step = c + 1;
    o.learning_rate = PsLearningRate(c);
    int64_t offset = 0;
    for (const PsSegment& s : PsSegments()) {
      ops::AdamWStep(ctx, View(x.data() + offset, s.length), View(g.data() + offset, s.length),
                     View(m.data() + offset, s.length), View(v.data() + offset, s.length), o,
                     s.weight_decay ? ops::WeightDecay::kApply : ops::WeightDecay::kSkip);
      offset += s.length;
    }
    trajectory.push_back(x);
  }
  return trajectory;
}

absl::StatusOr<PsRankResult> RunPsRank(comm::Communicator& world, const PsOptions& options,
                                       int slow_worker, int64_t stop_after) {
  PsRankResult result;
  const int rank = world.rank();
  if (rank >= options.workers) {
    ASSIGN_OR_RETURN(PsServer server,
                     PsServer::Create(options, rank - options.workers, PsInitial(), PsSegments(),
                                      PsAdam(), PsLearningRate));
    RETURN_IF_ERROR(server.Serve(world));
    result.applied = server.applied();
    result.window = server.window().length;
    return result;
  }
  ASSIGN_OR_RETURN(PsWorker worker, PsWorker::Create(options, kPsElements));
  std::vector<float> x = PsInitial();
  const int64_t clocks = stop_after >= 0 ? stop_after : options.steps;
  for (int64_t c = 0; c < clocks; ++c) {
    const std::vector<float> g = PsGradient(rank, options.workers, x);
    if (rank == slow_worker) absl::SleepFor(absl::Milliseconds(2));
    RETURN_IF_ERROR(worker.PushAndPull(world, g, absl::MakeSpan(x)));
    result.trajectory.push_back(x);
  }
  if (stop_after >= 0) {
    RETURN_IF_ERROR(worker.Stop(world));
    result.stop_values.resize(kPsElements);
    result.stop_exp_avg.resize(kPsElements);
    result.stop_exp_avg_sq.resize(kPsElements);
    RETURN_IF_ERROR(worker.PullState(world, absl::MakeSpan(result.stop_values),
                                     absl::MakeSpan(result.stop_exp_avg),
                                     absl::MakeSpan(result.stop_exp_avg_sq)));
  }
  return result;
}

}  // namespace trident::data_parallel::testing
