#include "bench/train_step/gemm_replay.h"

#include <vector>

#include "core/exec_context.h"
#include "core/ops/gemm.h"
#include "core/random.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::bench {
namespace {

using ops::GemmCall;
using ops::Trans;

Tensor Filled(Shape shape, uint64_t seed) {
  Tensor t = Tensor::Empty(shape, DType::kFloat32);
  FillNormal(ExecContext::Cpu(), t, seed, "test", 1.0f);
  return t;
}

void ExpectSameCall(const GemmCall& got, const GemmCall& want, size_t index) {
  SCOPED_TRACE(testing::Message() << "call " << index);
  EXPECT_EQ(got.batched, want.batched);
  EXPECT_EQ(got.trans_a, want.trans_a);
  EXPECT_EQ(got.trans_b, want.trans_b);
  EXPECT_EQ(got.m, want.m);
  EXPECT_EQ(got.n, want.n);
  EXPECT_EQ(got.k, want.k);
  EXPECT_EQ(got.batch, want.batch);
  EXPECT_EQ(got.row_stride_a, want.row_stride_a);
  EXPECT_EQ(got.row_stride_b, want.row_stride_b);
  EXPECT_EQ(got.row_stride_c, want.row_stride_c);
  EXPECT_EQ(got.batch_stride_a, want.batch_stride_a);
  EXPECT_EQ(got.batch_stride_b, want.batch_stride_b);
  EXPECT_EQ(got.batch_stride_c, want.batch_stride_c);
  EXPECT_EQ(got.alpha, want.alpha);
  EXPECT_EQ(got.beta, want.beta);
}

// The GEMMs of a linear layer's forward and split backward, plus attention-like
// batched products, as model code issues them.
void IssueModelLikeGemms(const ExecContext& ctx, GemmRecorder& recorder) {
  const Tensor x = Filled({12, 8}, 1), w = Filled({8, 20}, 2), y = Filled({12, 20}, 3);
  const Tensor dw = Filled({8, 20}, 4), dx = Filled({12, 8}, 5);
  recorder.set_phase(0);
  ops::Gemm(ctx, x, Trans::kNo, w, Trans::kNo, y);
  recorder.set_phase(1);
  ops::Gemm(ctx, y, Trans::kNo, w, Trans::kYes, dx);
  // The same on a column window of w (a tp shard's view), alpha 2.
  ops::Gemm(ctx, y.Slice(1, 0, 6), Trans::kNo, w.Slice(1, 4, 6), Trans::kYes, dx, 2.0f);
  recorder.set_phase(2);
  ops::Gemm(ctx, x, Trans::kYes, y, Trans::kNo, dw, 1.0f, 1.0f);
  // Heads side by side in the rows of an activation: [10, 3 heads x 12], each
  // head's first 4 columns used; batch stride 12, row stride 36.
  const Tensor heads_q = Filled({10, 3, 12}, 7).Slice(2, 0, 4).Transpose(0, 1);
  const Tensor scores = Filled({3, 10, 10}, 8);
  ops::BatchedGemm(ctx, heads_q, Trans::kNo, heads_q, Trans::kYes, scores, 0.5f);
  // Matrices one after another with padding between them.
  const Tensor apart = Filled({3, 7, 10}, 9).Slice(1, 0, 5);  // [3, 5, 10], batch stride 70
  const Tensor out = Filled({3, 5, 10}, 10);
  ops::BatchedGemm(ctx, apart, Trans::kNo, scores.Slice(1, 0, 10), Trans::kNo, out, 1.0f, 1.0f);
}

TEST(GemmReplayTest, ReplaysExactlyTheRecordedCallsAndAttributesPhases) {
  const ExecContext ctx = ExecContext::Cpu(2);
  GemmRecorder recorder(3);
  {
    ops::ScopedGemmObserver scope(&recorder);
    recorder.set_recording(true);
    IssueModelLikeGemms(ctx, recorder);
  }
  ASSERT_EQ(recorder.calls().size(), 6u);
  EXPECT_EQ(recorder.count(0), 1);
  EXPECT_EQ(recorder.count(1), 2);
  EXPECT_EQ(recorder.count(2), 3);
  EXPECT_EQ(recorder.total_count(), 6);
  EXPECT_GT(recorder.seconds(2), 0.0);
  recorder.ResetTimes();
  EXPECT_EQ(recorder.total_count(), 0);
  EXPECT_EQ(recorder.total_seconds(), 0.0);

  GemmReplay replay(ctx, recorder.calls());
  EXPECT_EQ(replay.approximated_layouts(), 0);
  double flops = 0;
  for (const GemmCall& call : recorder.calls()) flops += call.Flops();
  EXPECT_DOUBLE_EQ(replay.total_flops(), flops);
  EXPECT_GT(replay.buffer_bytes(), 0);

  GemmRecorder again(1);
  again.set_recording(true);
  {
    ops::ScopedGemmObserver scope(&again);
    replay.RunOnce(ctx);
    replay.RunOnce(ctx);
  }
  ASSERT_EQ(again.calls().size(), 2 * recorder.calls().size());
  for (size_t i = 0; i < again.calls().size(); ++i) {
    ExpectSameCall(again.calls()[i], recorder.calls()[i % recorder.calls().size()], i);
  }
}

TEST(GemmReplayTest, Bf16ReplayRunsTheSameCallsWithFp32WeightGradients) {
  const ExecContext ctx = ExecContext::Cpu(2);
  GemmRecorder recorder(3);
  {
    ops::ScopedGemmObserver scope(&recorder);
    recorder.set_recording(true);
    IssueModelLikeGemms(ctx, recorder);
  }
  const std::vector<GemmCall>& calls = recorder.calls();
  ASSERT_EQ(calls.size(), 6u);
  // Only x^T dy accumulated (call 2) is a weight gradient; the accumulating
  // batched product (call 5) has no transposed a and stays 16-bit.
  for (size_t i = 0; i < calls.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "call " << i);
    EXPECT_EQ(GemmReplay::OutputDType(calls[i], DType::kBFloat16),
              i == 3 ? DType::kFloat32 : DType::kBFloat16);
    EXPECT_EQ(GemmReplay::OutputDType(calls[i], DType::kFloat32), DType::kFloat32);
  }

  const GemmReplay fp32(ctx, calls);
  const GemmReplay bf16(ctx, calls, DType::kBFloat16);
  // Every operand is 2 bytes an element instead of 4, except the weight
  // gradient's c: [8, 20] fp32 = 640 bytes, which would be 320 in bf16.
  EXPECT_EQ(bf16.buffer_bytes(), fp32.buffer_bytes() / 2 + 8 * 20 * 2);
  EXPECT_DOUBLE_EQ(bf16.total_flops(), fp32.total_flops());

  GemmRecorder again(1);
  again.set_recording(true);
  {
    ops::ScopedGemmObserver scope(&again);
    bf16.RunOnce(ctx);
  }
  ASSERT_EQ(again.calls().size(), calls.size());
  for (size_t i = 0; i < calls.size(); ++i) ExpectSameCall(again.calls()[i], calls[i], i);
}

TEST(GemmReplayTest, CountsLayoutsItCannotReproduce) {
  // Batch stride 3 with 4 columns per row: the matrices overlap, which no
  // fresh buffer layout of the replay reproduces.
  GemmCall call;
  call.batched = true;
  call.m = 2;
  call.n = 2;
  call.k = 4;
  call.batch = 2;
  call.row_stride_a = call.row_stride_b = 10;
  call.row_stride_c = 2;
  call.batch_stride_a = call.batch_stride_b = 3;
  call.batch_stride_c = 4;
  call.trans_b = Trans::kYes;
  const ExecContext ctx = ExecContext::Cpu();
  GemmReplay replay(ctx, {call});
  EXPECT_EQ(replay.approximated_layouts(), 2);  // a and b; c is reproduced.
  GemmRecorder recorder(1);
  recorder.set_recording(true);
  {
    ops::ScopedGemmObserver scope(&recorder);
    replay.RunOnce(ctx);
  }
  ASSERT_EQ(recorder.calls().size(), 1u);
  EXPECT_EQ(recorder.calls()[0].m, 2);
  EXPECT_EQ(recorder.calls()[0].k, 4);
  EXPECT_EQ(recorder.calls()[0].row_stride_a, 10);
  EXPECT_EQ(recorder.calls()[0].batch_stride_a, 20);  // [2, 2, 10]: one after another
  EXPECT_EQ(recorder.calls()[0].batch_stride_c, 4);
}

}  // namespace
}  // namespace trident::bench
