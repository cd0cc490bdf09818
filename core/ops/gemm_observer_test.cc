// The GEMM observer hook of core/ops/gemm.h: what it reports, to whom, and that
// observing changes nothing in the results.

#include <thread>
#include <vector>

#include "core/exec_context.h"
#include "core/ops/elementwise.h"
#include "core/ops/gemm.h"
#include "core/ops/linear.h"
#include "core/ops/test_util.h"
#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident::ops {
namespace {

using testing::RandomTensor;

// Keeps every call and checks that Before/After come in pairs for one call.
class RecordingObserver : public GemmObserver {
 public:
  void BeforeGemm(const GemmCall& call) override {
    EXPECT_FALSE(inside_) << "BeforeGemm twice without AfterGemm";
    inside_ = true;
    calls.push_back(call);
  }
  void AfterGemm(const GemmCall& call) override {
    EXPECT_TRUE(inside_) << "AfterGemm without BeforeGemm";
    inside_ = false;
    ++completed;
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(call.m, calls.back().m);
    EXPECT_EQ(call.n, calls.back().n);
    EXPECT_EQ(call.k, calls.back().k);
  }

  std::vector<GemmCall> calls;
  int completed = 0;

 private:
  bool inside_ = false;
};

TEST(GemmObserverTest, SeesGemmShapesTransposesStridesAlphaBeta) {
  const ExecContext ctx = ExecContext::Cpu(2);
  // a^T with a stored [k=7, m=5] as a column window of a [7, 9] matrix.
  const Tensor a = RandomTensor({7, 9}, 1).Slice(1, 2, 5);
  const Tensor b = RandomTensor({6, 7}, 2);  // b^T: [7, 6]
  const Tensor c0 = RandomTensor({5, 6}, 3);
  const Tensor c_plain = Clone(ctx, c0), c_observed = Clone(ctx, c0);
  Gemm(ctx, a, Trans::kYes, b, Trans::kYes, c_plain, 0.5f, 1.0f);

  RecordingObserver observer;
  {
    ScopedGemmObserver scope(&observer);
    Gemm(ctx, a, Trans::kYes, b, Trans::kYes, c_observed, 0.5f, 1.0f);
  }
  Gemm(ctx, a, Trans::kYes, b, Trans::kYes, Clone(ctx, c0));  // Out of scope: not seen.

  ASSERT_EQ(observer.calls.size(), 1u);
  EXPECT_EQ(observer.completed, 1);
  const GemmCall& call = observer.calls[0];
  EXPECT_FALSE(call.batched);
  EXPECT_EQ(call.trans_a, Trans::kYes);
  EXPECT_EQ(call.trans_b, Trans::kYes);
  EXPECT_EQ(call.m, 5);
  EXPECT_EQ(call.n, 6);
  EXPECT_EQ(call.k, 7);
  EXPECT_EQ(call.batch, 1);
  EXPECT_EQ(call.row_stride_a, 9);
  EXPECT_EQ(call.row_stride_b, 7);
  EXPECT_EQ(call.row_stride_c, 6);
  EXPECT_EQ(call.batch_stride_a, 0);
  EXPECT_EQ(call.alpha, 0.5f);
  EXPECT_EQ(call.beta, 1.0f);
  EXPECT_DOUBLE_EQ(call.Flops(), 2.0 * 5 * 6 * 7);
  // Observing does not change the product (same thread count: same bits).
  EXPECT_EQ(c_observed.ToVector<float>(), c_plain.ToVector<float>());
}

// The fused linear ops report their product as the GEMM it is (beta = 1 onto
// the bias / the accumulated gradient), so benchmarks count it as GEMM work.
TEST(GemmObserverTest, SeesTheProductsOfTheFusedLinearOps) {
  const ExecContext ctx = ExecContext::Cpu();
  const Tensor x = RandomTensor({5, 3}, 4), w = RandomTensor({3, 7}, 5), b = RandomTensor({7}, 6);
  const Tensor y = Tensor::Empty({5, 7}, DType::kFloat32);
  const Tensor pre = Tensor::Empty({5, 7}, DType::kFloat32);
  const Tensor dw = RandomTensor({3, 7}, 7), db = RandomTensor({7}, 8);
  RecordingObserver observer;
  {
    ScopedGemmObserver scope(&observer);
    LinearForward(ctx, x, w, b, LinearEpilogue::kBiasGelu, y, pre);
    LinearWeightGrad(ctx, x, y, dw, db);
  }
  ASSERT_EQ(observer.calls.size(), 2u);
  EXPECT_EQ(observer.completed, 2);
  const GemmCall& forward = observer.calls[0];
  EXPECT_EQ(forward.trans_a, Trans::kNo);
  EXPECT_EQ(forward.m, 5);
  EXPECT_EQ(forward.n, 7);
  EXPECT_EQ(forward.k, 3);
  EXPECT_EQ(forward.beta, 1.0f);
  const GemmCall& weight_grad = observer.calls[1];
  EXPECT_EQ(weight_grad.trans_a, Trans::kYes);
  EXPECT_EQ(weight_grad.m, 3);
  EXPECT_EQ(weight_grad.n, 7);
  EXPECT_EQ(weight_grad.k, 5);
  EXPECT_EQ(weight_grad.beta, 1.0f);
}

TEST(GemmObserverTest, SeesBatchedGemmWithHeadStridesAndMatmul) {
  const ExecContext ctx = ExecContext::Cpu(1);
  // Three heads of width 4 inside a [10, 12] activation: batch stride 4, row
  // stride 12; scores [3, 10, 10] = q k^T per head.
  const Tensor qk = RandomTensor({10, 12}, 4);
  const Tensor heads = qk.Reshape({10, 3, 4}).Transpose(0, 1);
  const Tensor scores = Tensor::Empty({3, 10, 10}, DType::kFloat32);
  RecordingObserver observer;
  {
    ScopedGemmObserver scope(&observer);
    BatchedGemm(ctx, heads, Trans::kNo, heads, Trans::kYes, scores, 0.25f);
    Matmul(ctx, qk, Trans::kNo, qk, Trans::kYes);  // Reported once, as its Gemm.
  }
  ASSERT_EQ(observer.calls.size(), 2u);
  const GemmCall& batched = observer.calls[0];
  EXPECT_TRUE(batched.batched);
  EXPECT_EQ(batched.batch, 3);
  EXPECT_EQ(batched.m, 10);
  EXPECT_EQ(batched.n, 10);
  EXPECT_EQ(batched.k, 4);
  EXPECT_EQ(batched.trans_b, Trans::kYes);
  EXPECT_EQ(batched.row_stride_a, 12);
  EXPECT_EQ(batched.batch_stride_a, 4);
  EXPECT_EQ(batched.batch_stride_b, 4);
  EXPECT_EQ(batched.batch_stride_c, 100);
  EXPECT_EQ(batched.row_stride_c, 10);
  EXPECT_EQ(batched.alpha, 0.25f);
  EXPECT_EQ(batched.beta, 0.0f);
  EXPECT_DOUBLE_EQ(batched.Flops(), 2.0 * 3 * 10 * 10 * 4);
  const GemmCall& matmul = observer.calls[1];
  EXPECT_FALSE(matmul.batched);
  EXPECT_EQ(matmul.m, 10);
  EXPECT_EQ(matmul.n, 10);
  EXPECT_EQ(matmul.k, 12);
}

TEST(GemmObserverTest, InnerScopeHidesOuterUntilItEndsAndOtherThreadsAreNotSeen) {
  const ExecContext ctx = ExecContext::Cpu(1);
  const Tensor a = RandomTensor({4, 3}, 5), b = RandomTensor({3, 2}, 6);
  const Tensor c = Tensor::Empty({4, 2}, DType::kFloat32);
  RecordingObserver outer, inner;
  {
    ScopedGemmObserver outer_scope(&outer);
    Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
    {
      ScopedGemmObserver inner_scope(&inner);
      Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
      Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
      {
        ScopedGemmObserver none(nullptr);  // Observing switched off.
        Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
      }
    }
    // Another thread has no observer installed.
    std::thread other([&] {
      const Tensor c_other = Tensor::Empty({4, 2}, DType::kFloat32);
      Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c_other);
    });
    other.join();
    Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
  }
  Gemm(ctx, a, Trans::kNo, b, Trans::kNo, c);
  EXPECT_EQ(outer.calls.size(), 2u);
  EXPECT_EQ(outer.completed, 2);
  EXPECT_EQ(inner.calls.size(), 2u);
  EXPECT_EQ(inner.completed, 2);
}

}  // namespace
}  // namespace trident::ops
