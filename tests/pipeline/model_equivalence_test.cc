// Pipeline parallelism trains the same model as the serial run (DESIGN.md
// rule 2). For pp in {2, 4}, m in {1, p, 2p, 8} micro-batches and every
// schedule (GPipe, 1F1B, ZB-H1; interleaved with v = 2 where m % p == 0), plus
// uneven layer splits and pipeline x tensor parallelism (with and without
// sequence parallelism), the whole training step of the trainer
// (training::StepRunner: schedule, executor, tied embedding sync, gradient
// norm, AdamW with clipping and weight decay) runs 20 steps, and:
//   - every step's loss equals the serial run's (same micro-batching);
//   - the gradients after step 1, gathered over tp and pp, equal the serial
//     gradients;
//   - the parameters after step 20 equal the serial parameters.
// fp32 on the CPU, local backend. Tolerance: relative 1e-5 per step's loss and
// per tensor (tests/common/serial_comparison.h); NaN always fails.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "tests/common/serial_comparison.h"
#include "topology/grid_communicators.h"
#include "topology/layout_names.h"
#include "topology/process_grid.h"
#include "training/step_runner.h"
#include "training/train_config.pb.h"

namespace trident::pipeline {
namespace {

using testing::TensorsByName;

constexpr int kSteps = 20;
constexpr int kSeq = 16;
constexpr int kVocab = 61;  // Not a multiple of 128: the padding is exercised.
constexpr int kHidden = 32;
constexpr double kTolerance = 1e-5;

struct Layout {
  int pp = 1;
  int m = 1;
  topology::PipelineSchedule schedule = topology::ONE_F_ONE_B;
  int v = 1;
  int tp = 1;
  std::vector<int> layers_per_stage;
  bool sequence_parallel = false;

  std::string Name() const {
    std::string name = absl::StrCat("pp=", pp, " m=", m, " ", topology::ScheduleName(schedule));
    if (v > 1) absl::StrAppend(&name, " v=", v);
    if (tp > 1) absl::StrAppend(&name, " tp=", tp);
    if (sequence_parallel) absl::StrAppend(&name, " sp");
    if (!layers_per_stage.empty()) {
      absl::StrAppend(&name, " layers=[", absl::StrJoin(layers_per_stage, ","), "]");
    }
    return name;
  }
};

training::TrainConfig MakeConfig(const Layout& l) {
  training::TrainConfig config;
  auto* model = config.mutable_model();
  model->set_vocab_size(kVocab);
  model->set_context_length(kSeq);
  model->set_num_layers(8);  // pp = 4 with v = 2 needs 8 model chunks.
  model->set_num_heads(4);
  model->set_hidden_size(kHidden);
  auto* layout = config.mutable_layout();
  layout->set_pipeline_parallel(l.pp);
  layout->set_tensor_parallel(l.tp);
  layout->set_sequence_parallel(l.sequence_parallel);
  layout->set_num_micro_batches(l.m);
  layout->set_micro_batch_size(1);
  layout->set_schedule(l.schedule);
  layout->set_virtual_pipeline_stages(l.v);
  for (int n : l.layers_per_stage) layout->add_layers_per_stage(n);
  auto* optimizer = config.mutable_optimizer();
  optimizer->set_learning_rate(1e-3);
  optimizer->set_min_learning_rate(1e-4);
  optimizer->set_warmup_steps(2);
  // Active in the first steps (the initial gradient norm is about 1).
  optimizer->set_grad_clip(0.5);
  // See tests/tensor_parallel/model_equivalence_test.cc: epsilon = 1e-8 lets
  // Adam amplify the rounding of an element whose gradient hovers at zero.
  optimizer->set_epsilon(1e-6);
  config.set_steps(kSteps);
  config.set_seed(20261122);
  return config;
}

// Tokens and targets [m, T] of step `step`: a fixed pseudo-random function of
// (step, row, position), the same for every layout.
void MakeBatch(int step, int rows, Tensor* tokens, Tensor* targets) {
  std::vector<int32_t> in(rows * kSeq), out(rows * kSeq);
  for (int i = 0; i < rows * kSeq; ++i) {
    uint64_t z = (static_cast<uint64_t>(step) * 1000003u + i) * 0x9E3779B97F4A7C15ull;
    z ^= z >> 29;
    in[i] = static_cast<int32_t>(z % kVocab);
    out[i] = static_cast<int32_t>((in[i] * 5 + 3) % kVocab);
  }
  *tokens = Tensor::FromVector(in, {rows, kSeq});
  *targets = Tensor::FromVector(out, {rows, kSeq});
}

struct RunResult {
  std::vector<double> losses;
  TensorsByName grads_after_step1;
  TensorsByName params_after_last;
};

TensorsByName ByName(const std::vector<training::NamedTensor>& tensors) {
  TensorsByName out;
  for (const training::NamedTensor& t : tensors) out[t.name] = t.tensor.ToVector<float>();
  return out;
}

absl::StatusOr<RunResult> TrainModel(const Layout& layout) {
  const training::TrainConfig config = MakeConfig(layout);
  const int world_size = layout.pp * layout.tp;
  ASSIGN_OR_RETURN(const topology::ProcessGrid grid,
                   topology::ProcessGrid::Create(config.layout(), world_size));
  const double global_tokens = static_cast<double>(layout.m) * kSeq;
  RunResult result;
  RETURN_IF_ERROR(comm::RunLocalRanks(world_size, [&](int rank, comm::Communicator& world) {
    const ExecContext ctx = ExecContext::Cpu();
    ASSIGN_OR_RETURN(const topology::GridCommunicators comms,
                     topology::BuildGridCommunicators(grid, world));
    ASSIGN_OR_RETURN(std::unique_ptr<training::StepRunner> runner,
                     training::StepRunner::Create(config, grid, rank, comms, ctx));
    for (int step = 0; step < kSteps; ++step) {
      Tensor tokens, targets;
      MakeBatch(step, layout.m, &tokens, &targets);
      ASSIGN_OR_RETURN(const training::StepResult step_result,
                       runner->TrainStep(step, tokens, targets, global_tokens));
      if (rank == 0) result.losses.push_back(step_result.loss);
      if (step == 0) {
        ASSIGN_OR_RETURN(std::vector<training::NamedTensor> grads,
                         runner->GatherSerial(/*gradients=*/true));
        if (rank == 0) result.grads_after_step1 = ByName(grads);
      }
    }
    ASSIGN_OR_RETURN(std::vector<training::NamedTensor> values,
                     runner->GatherSerial(/*gradients=*/false));
    if (rank == 0) result.params_after_last = ByName(values);
    return absl::OkStatus();
  }));
  return result;
}

class PipelineEquivalenceTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    for (auto& [m, run] : serial_) delete run;
    serial_.clear();
  }

  // The serial run with m micro-batches (computed once per m).
  static const RunResult& Serial(int m) {
    RunResult*& run = serial_[m];
    if (run == nullptr) {
      absl::StatusOr<RunResult> serial = TrainModel(Layout{1, m});
      EXPECT_TRUE(serial.ok()) << serial.status();
      run = new RunResult(serial.ok() ? *std::move(serial) : RunResult());
    }
    return *run;
  }

  static void ExpectEqualsSerial(const Layout& layout) {
    SCOPED_TRACE(layout.Name());
    const RunResult& serial = Serial(layout.m);
    ASSERT_EQ(serial.losses.size(), static_cast<size_t>(kSteps));
    absl::StatusOr<RunResult> run = TrainModel(layout);
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->losses.size(), serial.losses.size());
    double worst_loss = 0, worst_grad = 0, worst_param = 0;
    for (size_t s = 0; s < serial.losses.size(); ++s) {
      const double difference = std::abs(run->losses[s] - serial.losses[s]) / serial.losses[s];
      if (!(difference <= worst_loss)) worst_loss = difference;
      EXPECT_LT(difference, kTolerance)
          << "step " << s + 1 << ": " << run->losses[s] << " vs serial " << serial.losses[s];
    }
    testing::ExpectSameTensors(run->grads_after_step1, serial.grads_after_step1,
                               "gradients after step 1", kHidden, /*key_bias_out=*/false,
                               kTolerance, &worst_grad);
    testing::ExpectSameTensors(run->params_after_last, serial.params_after_last,
                               "parameters after step 20", kHidden, /*key_bias_out=*/true,
                               kTolerance, &worst_param);
    std::printf("%s: worst relative difference: loss %.3g, gradients %.3g, parameters %.3g\n",
                layout.Name().c_str(), worst_loss, worst_grad, worst_param);
  }

  static std::map<int, RunResult*> serial_;
};

std::map<int, RunResult*> PipelineEquivalenceTest::serial_;

TEST_F(PipelineEquivalenceTest, SerialRunTrains) {
  const RunResult& serial = Serial(4);
  ASSERT_EQ(serial.losses.size(), static_cast<size_t>(kSteps));
  EXPECT_NEAR(serial.losses.front(), std::log(double{kVocab}), 0.1);
  EXPECT_LT(serial.losses.back(), serial.losses.front() - 0.05);
  // wte, wpe, 12 tensors per block, ln_f: the tied head adds nothing.
  EXPECT_EQ(serial.grads_after_step1.size(), 2 + 12 * 8 + 2u);
}

// Every step's micro-batch set for pp = p: 1, p, 2p and 8.
std::vector<int> MicroBatchCounts(int p) {
  std::vector<int> counts = {1, p, 2 * p, 8};
  std::sort(counts.begin(), counts.end());
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  return counts;
}

TEST_F(PipelineEquivalenceTest, GPipeEqualsSerial) {
  for (int p : {2, 4}) {
    for (int m : MicroBatchCounts(p)) ExpectEqualsSerial(Layout{p, m, topology::GPIPE});
  }
}

TEST_F(PipelineEquivalenceTest, OneFOneBEqualsSerial) {
  for (int p : {2, 4}) {
    for (int m : MicroBatchCounts(p)) ExpectEqualsSerial(Layout{p, m, topology::ONE_F_ONE_B});
  }
}

TEST_F(PipelineEquivalenceTest, ZeroBubbleH1EqualsSerial) {
  for (int p : {2, 4}) {
    for (int m : MicroBatchCounts(p)) ExpectEqualsSerial(Layout{p, m, topology::ZERO_BUBBLE_H1});
  }
}

TEST_F(PipelineEquivalenceTest, InterleavedEqualsSerial) {
  for (int p : {2, 4}) {
    for (int m : MicroBatchCounts(p)) {
      if (m % p == 0) ExpectEqualsSerial(Layout{p, m, topology::INTERLEAVED_1F1B, 2});
    }
  }
}

TEST_F(PipelineEquivalenceTest, UnevenSplitsEqualSerial) {
  ExpectEqualsSerial(Layout{2, 4, topology::ONE_F_ONE_B, 1, 1, {3, 5}});
  ExpectEqualsSerial(Layout{4, 4, topology::ZERO_BUBBLE_H1, 1, 1, {1, 2, 4, 1}});
  ExpectEqualsSerial(Layout{2, 4, topology::INTERLEAVED_1F1B, 2, 1, {1, 3, 2, 2}});
}

TEST_F(PipelineEquivalenceTest, PipelineWithTensorParallelEqualsSerial) {
  ExpectEqualsSerial(Layout{2, 4, topology::ONE_F_ONE_B, 1, 2});
  ExpectEqualsSerial(Layout{2, 4, topology::INTERLEAVED_1F1B, 2, 2});
}

// Sequence parallelism across stages: the activations and gradients crossing
// the pipeline are each tp rank's row chunk, and every stage's LayerNorm
// gradients (ln_f on the last) are summed over tp.
const Layout kSequenceParallelRows[] = {
    {.pp = 2, .m = 4, .schedule = topology::ONE_F_ONE_B, .tp = 2, .sequence_parallel = true},
    {.pp = 2,
     .m = 4,
     .schedule = topology::INTERLEAVED_1F1B,
     .v = 2,
     .tp = 2,
     .sequence_parallel = true},
    {.pp = 2, .m = 4, .schedule = topology::ZERO_BUBBLE_H1, .tp = 2, .sequence_parallel = true},
};

TEST_F(PipelineEquivalenceTest, PipelineWithSequenceParallelEqualsSerial) {
  for (const Layout& layout : kSequenceParallelRows) ExpectEqualsSerial(layout);
}

}  // namespace
}  // namespace trident::pipeline
