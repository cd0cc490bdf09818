// The tensor-parallel traffic of one forward + backward of a GptStage, as the
// tp communicator counts it (CommStats), equals Megatron's analytic count.
//
// With B*T tokens, hidden h, L blocks, fp32 (4 bytes), no sequence parallelism,
// every collective is an all-reduce:
//   forward:  1 (embedding: masked lookup summed)              of B*T*h
//           + 2 per block (after attn.c_proj and mlp.c_proj)   of B*T*h
//           + 3 in the vocab-parallel loss (max, sum-exp, target logit) of B*T
//   backward: 2 per block (dx of c_attn's and c_fc's input)    of B*T*h
//           + 1 for the head's dx (dlogits wte)                of B*T*h
// The logits [B*T, V] are never gathered, and the embedding's backward needs no
// traffic (token ids have no gradient).
//
// Mixed precision (bf16/fp16 parameters, so 16-bit activations): every
// activation all-reduce moves 2 bytes per element, half of fp32's; the loss's
// three per-token values stay fp32 (the logits and the softmax are fp32).

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/parameter.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"
#include "tensor_parallel/tp_group.h"
#include "tests/tensor_parallel/stage_shape.h"
#include "transformer/gpt_stage.h"

namespace trident::tp {
namespace {

using comm::CommOp;
using comm::CommStats;
using test_support::Batch;
using test_support::MakeBatch;
using test_support::TinyConfig;
using transformer::GptConfig;
using transformer::GptStage;
using transformer::StageSpec;

struct Traffic {
  int64_t calls = 0;
  int64_t bytes = 0;
};

// The formula of the file comment; `element` is the activations' bytes per
// element (4 for fp32, 2 for bf16/fp16).
Traffic ForwardTraffic(int64_t tokens, int64_t hidden, int64_t layers, int64_t element = 4) {
  const int64_t activation = tokens * hidden * element;
  return {1 + 2 * layers + 3, activation * (1 + 2 * layers) + 3 * tokens * 4};
}
Traffic BackwardTraffic(int64_t tokens, int64_t hidden, int64_t layers, int64_t element = 4) {
  const int64_t activation = tokens * hidden * element;
  return {2 * layers + 1, activation * (2 * layers + 1)};
}

// Only all-reduces, exactly `want` of them.
void ExpectAllReduceOnly(const CommStats& stats, const Traffic& want, const std::string& what) {
  EXPECT_EQ(stats.calls_of(CommOp::kAllReduce), want.calls) << what;
  EXPECT_EQ(stats.bytes_of(CommOp::kAllReduce), want.bytes) << what;
  for (int op = 0; op < comm::kNumCommOps; ++op) {
    if (static_cast<CommOp>(op) == CommOp::kAllReduce) continue;
    EXPECT_EQ(stats.calls[op], 0) << what << ": " << comm::CommOpName(static_cast<CommOp>(op));
    EXPECT_EQ(stats.bytes[op], 0) << what << ": " << comm::CommOpName(static_cast<CommOp>(op));
  }
}

void CheckTraffic(int tp_size, int batch, int seq, DType dtype = DType::kFloat32) {
  SCOPED_TRACE(absl::StrCat("tp=", tp_size, " B=", batch, " T=", seq, " ", DTypeName(dtype)));
  const GptConfig config = TinyConfig();
  const Batch data = MakeBatch(batch, seq, config.vocab_size());
  const int64_t tokens = int64_t{batch} * seq;
  const int64_t element = static_cast<int64_t>(DTypeSize(dtype));
  const Traffic forward =
      ForwardTraffic(tokens, config.hidden_size(), config.num_layers(), element);
  const Traffic backward =
      BackwardTraffic(tokens, config.hidden_size(), config.num_layers(), element);
  const ExecContext ctx = ExecContext::Cpu();
  absl::Status status = comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
    const TpGroup tp(&world);
    const int64_t padded = (config.vocab_size() + tp_size - 1) / tp_size * tp_size;
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, StageSpec::Whole(config, padded), tp, Device::Cpu()));
    stage->Initialize(ctx, /*seed=*/5);
    // Mixed precision: 16-bit values (as AdamW::KeepFp32Masters leaves them),
    // fp32 gradients.
    for (Parameter* p : stage->parameters()) {
      if (dtype == DType::kFloat32) break;
      Tensor value = Tensor::Empty(p->value.shape(), dtype);
      ops::Copy(ctx, p->value, value);
      p->value = value;
    }
    world.ResetStats();
    RETURN_IF_ERROR(stage->Forward(ctx, 0, data.tokens, data.targets).status());
    ExpectAllReduceOnly(world.stats(), forward, absl::StrCat("rank ", rank, " forward"));
    world.ResetStats();
    RETURN_IF_ERROR(stage->BackwardInput(ctx, 0, Tensor(), 1.0f / tokens).status());
    RETURN_IF_ERROR(stage->BackwardWeights(ctx, 0));
    ExpectAllReduceOnly(world.stats(), backward, absl::StrCat("rank ", rank, " backward"));
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

TEST(TensorParallelCommVolumeTest, OneStepMatchesMegatronCount) {
  for (int tp : {2, 4}) {
    CheckTraffic(tp, /*batch=*/2, /*seq=*/8);
    CheckTraffic(tp, /*batch=*/3, /*seq=*/5);  // Volume scales with B*T, not the context.
  }
}

TEST(TensorParallelCommVolumeTest, SixteenBitActivationsHalveTheActivationTraffic) {
  for (DType dtype : {DType::kBFloat16, DType::kFloat16}) {
    CheckTraffic(/*tp_size=*/2, /*batch=*/2, /*seq=*/8, dtype);
  }
  // Written out for the tiny model (h=16, L=3, 16 tokens): 7 activation
  // all-reduces of 16 x 16 x 2 bytes, half of fp32's 7 x 16 x 16 x 4.
  EXPECT_EQ(ForwardTraffic(16, 16, 3, 2).bytes, 7 * 16 * 16 * 2 + 3 * 16 * 4);
  EXPECT_EQ(BackwardTraffic(16, 16, 3, 2).bytes * 2, BackwardTraffic(16, 16, 3).bytes);
}

// The formula written out for the tiny model at B=2, T=8 (h=16, L=3): a check on
// the arithmetic of ForwardTraffic/BackwardTraffic themselves.
TEST(TensorParallelCommVolumeTest, FormulaForTheTinyModel) {
  const Traffic f = ForwardTraffic(16, 16, 3);
  EXPECT_EQ(f.calls, 10);
  EXPECT_EQ(f.bytes, 7 * 16 * 16 * 4 + 3 * 16 * 4);
  const Traffic b = BackwardTraffic(16, 16, 3);
  EXPECT_EQ(b.calls, 7);
  EXPECT_EQ(b.bytes, 7 * 16 * 16 * 4);
}

// A group of one rank is the serial model: no collective is ever issued.
TEST(TensorParallelCommVolumeTest, GroupOfOneIssuesNothing) {
  const GptConfig config = TinyConfig();
  const Batch data = MakeBatch(2, 8, config.vocab_size());
  const ExecContext ctx = ExecContext::Cpu();
  absl::Status status = comm::RunLocalRanks(1, [&](int, comm::Communicator& world) {
    ASSIGN_OR_RETURN(std::unique_ptr<GptStage> stage,
                     GptStage::Create(config, StageSpec::Whole(config, 11), TpGroup(&world),
                                      Device::Cpu()));
    stage->Initialize(ctx, 5);
    world.ResetStats();
    RETURN_IF_ERROR(stage->Forward(ctx, 0, data.tokens, data.targets).status());
    RETURN_IF_ERROR(stage->BackwardInput(ctx, 0, Tensor(), 1.0f / 16).status());
    RETURN_IF_ERROR(stage->BackwardWeights(ctx, 0));
    ExpectAllReduceOnly(world.stats(), Traffic{0, 0}, "tp=1");
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace trident::tp
