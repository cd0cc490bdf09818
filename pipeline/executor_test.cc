// The executor against a toy model whose every number can be computed
// directly: model chunk k maps x to tanh(w_k * x) elementwise (w_k a vector of
// kWidth weights), the first chunk's input is a fixed function of the
// micro-batch, the loss of a micro-batch is sum(y * target). Every schedule,
// run by the executor over the local backend's pp communicator, must give the
// same loss and weight gradients as the direct computation, bitwise: the toy
// stage keeps each micro-batch's gradient apart and sums them in micro-batch
// order, so nothing depends on the order the schedule runs them in.

#include "pipeline/executor.h"

#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/comm/local/local_world.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "pipeline/schedule.h"
#include "pipeline/simulator.h"

namespace trident::pipeline {
namespace {

constexpr int kRows = 2;
constexpr int kWidth = 3;

float Weight(int model_chunk, int j) { return 0.5f + 0.1f * model_chunk - 0.07f * j; }
float Input(int mb, int i) { return std::sin(0.3f * mb + 0.11f * i + 0.2f); }
float Target(int mb, int i) { return std::cos(0.17f * mb - 0.05f * i); }

// The direct computation: loss per micro-batch and dL/dw per model chunk.
struct Reference {
  std::vector<double> loss;                  // [mb]
  std::vector<std::vector<float>> gradient;  // [model chunk][j]
};

Reference Direct(int num_model_chunks, int m) {
  Reference ref;
  ref.gradient.assign(num_model_chunks, std::vector<float>(kWidth, 0.0f));
  std::vector<std::vector<std::vector<float>>> per_mb(
      m, std::vector<std::vector<float>>(num_model_chunks, std::vector<float>(kWidth, 0.0f)));
  for (int mb = 0; mb < m; ++mb) {
    std::vector<std::vector<float>> xs(num_model_chunks + 1, std::vector<float>(kRows * kWidth));
    for (int i = 0; i < kRows * kWidth; ++i) xs[0][i] = Input(mb, i);
    for (int k = 0; k < num_model_chunks; ++k) {
      for (int i = 0; i < kRows * kWidth; ++i) xs[k + 1][i] = std::tanh(Weight(k, i % kWidth) * xs[k][i]);
    }
    double loss = 0;
    std::vector<float> grad(kRows * kWidth);
    for (int i = 0; i < kRows * kWidth; ++i) {
      loss += xs[num_model_chunks][i] * Target(mb, i);
      grad[i] = Target(mb, i);
    }
    ref.loss.push_back(loss);
    for (int k = num_model_chunks - 1; k >= 0; --k) {
      std::vector<float> grad_in(kRows * kWidth);
      for (int i = 0; i < kRows * kWidth; ++i) {
        const float y = xs[k + 1][i];
        const float dz = grad[i] * (1.0f - y * y);
        per_mb[mb][k][i % kWidth] += dz * xs[k][i];
        grad_in[i] = dz * Weight(k, i % kWidth);
      }
      grad = grad_in;
    }
  }
  for (int k = 0; k < num_model_chunks; ++k) {
    for (int mb = 0; mb < m; ++mb) {
      for (int j = 0; j < kWidth; ++j) ref.gradient[k][j] += per_mb[mb][k][j];
    }
  }
  return ref;
}

// One stage of the toy model, driven by the executor.
class ToyStage : public PipelineStage {
 public:
  ToyStage(const Schedule& schedule, int stage) : schedule_(schedule), stage_(stage) {}

  std::vector<int64_t> InputShape(int, int) const override { return {kRows, kWidth}; }
  std::vector<int64_t> OutputShape(int, int) const override { return {kRows, kWidth}; }

  absl::StatusOr<Tensor> Forward(int chunk, int mb, const Tensor& input) override {
    const int k = schedule_.ModelChunk(stage_, chunk);
    if (fail_forward_mb_ == mb) return absl::InternalError("injected failure");
    std::vector<float> x(kRows * kWidth);
    if (k == 0) {
      if (input.defined()) return absl::InternalError("the first chunk got an input");
      for (int i = 0; i < kRows * kWidth; ++i) x[i] = Input(mb, i);
    } else {
      x = input.ToVector<float>();
    }
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = std::tanh(Weight(k, i % kWidth) * x[i]);
    Stash& stash = stash_[{mb, chunk}];
    stash.x = x;
    stash.y = y;
    if (k == schedule_.NumModelChunks() - 1) {
      double loss = 0;
      for (int i = 0; i < kRows * kWidth; ++i) loss += y[i] * Target(mb, i);
      losses[mb] = loss;
      return Tensor();
    }
    return Tensor::FromVector(y, {kRows, kWidth});
  }

  absl::StatusOr<Tensor> BackwardInput(int chunk, int mb, const Tensor& grad_output) override {
    const int k = schedule_.ModelChunk(stage_, chunk);
    Stash& stash = stash_.at({mb, chunk});
    std::vector<float> grad(kRows * kWidth);
    if (k == schedule_.NumModelChunks() - 1) {
      if (grad_output.defined()) return absl::InternalError("the last chunk got a gradient");
      for (int i = 0; i < kRows * kWidth; ++i) grad[i] = Target(mb, i);
    } else {
      grad = grad_output.ToVector<float>();
    }
    stash.dz.resize(grad.size());
    std::vector<float> grad_in(grad.size());
    for (size_t i = 0; i < grad.size(); ++i) {
      stash.dz[i] = grad[i] * (1.0f - stash.y[i] * stash.y[i]);
      grad_in[i] = stash.dz[i] * Weight(k, i % kWidth);
    }
    if (k == 0) return Tensor();
    return Tensor::FromVector(grad_in, {kRows, kWidth});
  }

  absl::Status BackwardWeight(int chunk, int mb) override {
    auto it = stash_.find({mb, chunk});
    if (it == stash_.end() || it->second.dz.empty()) {
      return absl::InternalError("W before B");
    }
    std::vector<float> g(kWidth, 0.0f);
    for (int i = 0; i < kRows * kWidth; ++i) g[i % kWidth] += it->second.dz[i] * it->second.x[i];
    per_mb_gradient[{chunk, mb}] = g;
    stash_.erase(it);
    return absl::OkStatus();
  }

  // dL/dw of local chunk `chunk`, summed in micro-batch order.
  std::vector<float> Gradient(int chunk) const {
    std::vector<float> total(kWidth, 0.0f);
    for (int mb = 0; mb < schedule_.num_micro_batches; ++mb) {
      const std::vector<float>& g = per_mb_gradient.at({chunk, mb});
      for (int j = 0; j < kWidth; ++j) total[j] += g[j];
    }
    return total;
  }
  int stashed() const { return static_cast<int>(stash_.size()); }

  std::map<int, double> losses;
  std::map<std::pair<int, int>, std::vector<float>> per_mb_gradient;  // (chunk, mb)
  int fail_forward_mb_ = -1;

 private:
  struct Stash {
    std::vector<float> x, y, dz;
  };
  const Schedule& schedule_;
  const int stage_;
  std::map<std::pair<int, int>, Stash> stash_;
};

struct Case {
  ScheduleKind kind;
  int p, m, v;
  std::string Name() const {
    return absl::StrCat(ScheduleKindName(kind), " p=", p, " m=", m, " v=", v);
  }
};

void RunAndCompare(const Case& c) {
  SCOPED_TRACE(c.Name());
  absl::StatusOr<Schedule> schedule = MakeSchedule(c.kind, c.p, c.m, c.v);
  ASSERT_TRUE(schedule.ok()) << schedule.status();
  const Reference ref = Direct(c.p * c.v, c.m);
  std::mutex mu;
  std::map<int, std::vector<float>> gradients;  // By model chunk.
  std::map<int, double> losses;
  std::vector<std::vector<ActionTiming>> timings(c.p);
  std::vector<std::vector<double>> cpu_seconds(c.p);
  const absl::Time epoch = absl::Now();
  absl::Status status = comm::RunLocalRanks(c.p, [&](int rank, comm::Communicator& pp) {
    ToyStage stage(*schedule, rank);
    ExecutorOptions options;
    options.timings = &timings[rank];
    options.cpu_seconds = &cpu_seconds[rank];
    options.epoch = epoch;
    RETURN_IF_ERROR(RunStageSchedule(*schedule, rank, stage, c.p > 1 ? &pp : nullptr, options));
    if (stage.stashed() != 0) return absl::InternalError("stash not empty after the step");
    std::lock_guard<std::mutex> lock(mu);
    for (int chunk = 0; chunk < c.v; ++chunk) {
      gradients[schedule->ModelChunk(rank, chunk)] = stage.Gradient(chunk);
    }
    for (auto& [mb, loss] : stage.losses) losses[mb] = loss;
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(static_cast<int>(losses.size()), c.m);
  for (int mb = 0; mb < c.m; ++mb) EXPECT_EQ(losses[mb], ref.loss[mb]) << "mb " << mb;
  for (int k = 0; k < c.p * c.v; ++k) EXPECT_EQ(gradients[k], ref.gradient[k]) << "chunk " << k;
  for (int s = 0; s < c.p; ++s) {
    ASSERT_EQ(timings[s].size(), schedule->stages[s].size());
    ASSERT_EQ(cpu_seconds[s].size(), schedule->stages[s].size());
    for (size_t i = 0; i < cpu_seconds[s].size(); ++i) {
      EXPECT_GE(cpu_seconds[s][i], 0.0);
      if (!IsCompute(schedule->stages[s][i].kind)) EXPECT_EQ(cpu_seconds[s][i], 0.0);
    }
    for (size_t i = 0; i < timings[s].size(); ++i) {
      EXPECT_LE(timings[s][i].start, timings[s][i].end);
      if (i > 0) {
        EXPECT_LE(timings[s][i - 1].end, timings[s][i].start);
      }
    }
  }
}

TEST(ExecutorTest, EverySchedule) {
  for (int p : {1, 2, 3, 4}) {
    for (int m : {1, 2, 3, 4, 8}) {
      RunAndCompare({ScheduleKind::kGPipe, p, m, 1});
      RunAndCompare({ScheduleKind::kOneFOneB, p, m, 1});
      RunAndCompare({ScheduleKind::kZeroBubbleH1, p, m, 1});
      if (m % p == 0) {
        RunAndCompare({ScheduleKind::kInterleaved1F1B, p, m, 2});
        RunAndCompare({ScheduleKind::kInterleaved1F1B, p, m, 3});
      }
    }
  }
}

TEST(ExecutorTest, ForwardOnlyComputesEveryLoss) {
  for (int p : {1, 2, 4}) {
    for (int v : {1, 2}) {
      absl::StatusOr<Schedule> schedule = MakeForwardOnlySchedule(p, 4, v);
      ASSERT_TRUE(schedule.ok()) << schedule.status();
      ASSERT_TRUE(CheckSchedule(*schedule).ok()) << CheckSchedule(*schedule).status();
      const Reference ref = Direct(p * v, 4);
      std::map<int, double> losses;
      absl::Status status = comm::RunLocalRanks(p, [&](int rank, comm::Communicator& pp) {
        ToyStage stage(*schedule, rank);
        RETURN_IF_ERROR(RunStageSchedule(*schedule, rank, stage, p > 1 ? &pp : nullptr));
        if (rank == schedule->StageOfModelChunk(p * v - 1)) losses = stage.losses;
        return absl::OkStatus();
      });
      ASSERT_TRUE(status.ok()) << status;
      for (int mb = 0; mb < 4; ++mb) EXPECT_EQ(losses[mb], ref.loss[mb]);
    }
  }
}

TEST(ExecutorTest, PassErrorNamesTheAction) {
  absl::StatusOr<Schedule> schedule = MakeSchedule(ScheduleKind::kOneFOneB, 1, 3);
  ASSERT_TRUE(schedule.ok());
  ToyStage stage(*schedule, 0);
  stage.fail_forward_mb_ = 1;
  absl::Status status = RunStageSchedule(*schedule, 0, stage, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("pipeline stage 0 action #3 F(mb=1, chunk=0): injected failure"),
            std::string::npos)
      << status;
}

TEST(ExecutorTest, RefusesAMissingOrWrongCommunicator) {
  absl::StatusOr<Schedule> schedule = MakeSchedule(ScheduleKind::kOneFOneB, 2, 2);
  ASSERT_TRUE(schedule.ok());
  ToyStage stage(*schedule, 0);
  absl::Status status = RunStageSchedule(*schedule, 0, stage, nullptr);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("one rank per stage (2)"), std::string::npos) << status;
  EXPECT_EQ(RunStageSchedule(*schedule, 2, stage, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ExecutorTest, ALostMessageTimesOutNamingTheReceive) {
  // Stage 1 runs a schedule whose stage 0 never sends: its receive must fail
  // with the backend's timeout, named by the action, not hang.
  absl::StatusOr<Schedule> schedule = MakeSchedule(ScheduleKind::kGPipe, 2, 1);
  ASSERT_TRUE(schedule.ok());
  comm::CommOptions options;
  options.timeout = absl::Milliseconds(200);
  absl::Status stage1_status;
  absl::Status status = comm::RunLocalRanks(
      2,
      [&](int rank, comm::Communicator& pp) {
        if (rank == 0) return absl::OkStatus();
        ToyStage stage(*schedule, 1);
        stage1_status = RunStageSchedule(*schedule, 1, stage, &pp);
        return absl::OkStatus();
      },
      options);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(stage1_status.code(), absl::StatusCode::kDeadlineExceeded) << stage1_status;
  EXPECT_NE(stage1_status.message().find("RECV_ACT(mb=0, chunk=0, peer=0)"), std::string::npos)
      << stage1_status;
}

// Forwards every call to a local communicator and records each point-to-point
// batch the executor starts, as "SEND_ACT+RECV_GRAD"-like strings.
class BatchRecorder final : public comm::Communicator {
 public:
  explicit BatchRecorder(comm::Communicator* inner)
      : Communicator(inner->options()), inner_(inner) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  absl::Span<const int> world_ranks() const override { return inner_->world_ranks(); }
  const std::string& name() const override { return inner_->name(); }
  absl::string_view backend() const override { return inner_->backend(); }

  const std::vector<std::string>& batches() const { return batches_; }

 private:
  using Started = absl::StatusOr<std::unique_ptr<comm::CommHandle>>;
  Started DoAllReduce(comm::Buffer b, comm::ReduceOp op) override {
    return inner_->AllReduceAsync(b, op);
  }
  Started DoReduceScatter(comm::ConstBuffer in, comm::Buffer out, comm::ReduceOp op) override {
    return inner_->ReduceScatterAsync(in, out, op);
  }
  Started DoAllGather(comm::ConstBuffer in, comm::Buffer out) override {
    return inner_->AllGatherAsync(in, out);
  }
  Started DoBroadcast(comm::Buffer b, int root) override { return inner_->BroadcastAsync(b, root); }
  Started DoBarrier() override { return inner_->BarrierAsync(); }
  Started DoSendRecv(absl::Span<const comm::P2POp> ops) override {
    std::vector<std::string> names;
    for (const comm::P2POp& op : ops) {
      names.push_back(absl::StrCat(op.op == comm::CommOp::kSend ? "SEND_" : "RECV_",
                                   op.tag == 0 ? "ACT" : "GRAD"));
    }
    batches_.push_back(absl::StrJoin(names, "+"));
    return inner_->BatchSendRecvAsync(ops);
  }
  absl::StatusOr<std::unique_ptr<comm::Communicator>> DoCreateGroup(
      absl::Span<const int> ranks, absl::string_view name) override {
    return inner_->CreateGroup(ranks, name);
  }

  comm::Communicator* inner_;
  std::vector<std::string> batches_;
};

TEST(ExecutorTest, SendsAfterAComputeStartInOneBatchWithTheNextReceive) {
  absl::StatusOr<Schedule> schedule = MakeSchedule(ScheduleKind::kOneFOneB, 2, 3);
  ASSERT_TRUE(schedule.ok());
  std::vector<std::vector<std::string>> batches(2);
  absl::Status status = comm::RunLocalRanks(2, [&](int rank, comm::Communicator& pp) {
    BatchRecorder recorder(&pp);
    ToyStage stage(*schedule, rank);
    RETURN_IF_ERROR(RunStageSchedule(*schedule, rank, stage, &recorder));
    batches[rank] = recorder.batches();
    return absl::OkStatus();
  });
  ASSERT_TRUE(status.ok()) << status;
  // Stage 0: F0 SEND_ACT0 F1 SEND_ACT1 RECV_GRAD0 B0 F2 SEND_ACT2 RECV_GRAD1 B1
  // RECV_GRAD2 B2. SEND_ACT0 follows a compute with no receive in flight: it
  // carries RECV_GRAD0. The later receives are posted alone before the compute
  // actions that no SEND follows, while the SENDs find one in flight.
  EXPECT_EQ(absl::StrJoin(batches[0], ", "),
            "SEND_ACT+RECV_GRAD, SEND_ACT, RECV_GRAD, SEND_ACT, RECV_GRAD");
  // Stage 1 receives ahead before each F, so its SENDs go alone.
  EXPECT_EQ(absl::StrJoin(batches[1], ", "),
            "RECV_ACT, RECV_ACT, SEND_GRAD, RECV_ACT, SEND_GRAD, SEND_GRAD");
}

}  // namespace
}  // namespace trident::pipeline
