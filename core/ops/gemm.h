#ifndef TRIDENT_CORE_OPS_GEMM_H_
#define TRIDENT_CORE_OPS_GEMM_H_

// Matrix products, BLAS-style: C = alpha * op(A) op(B) + beta * C, where
// op(X) = X (Trans::kNo) or X^T (Trans::kYes).
//
// Operands are fp32 matrices on the context's device with a unit column stride
// and any row stride >= their column count, so column slices of a bigger matrix
// (a head's Q inside a fused QKV activation, a tp shard's window of a weight)
// are used in place. beta = 0 overwrites C without reading it (garbage or NaN in
// C is fine); beta = 1 accumulates, which is how weight gradients are summed
// over micro-batches. C must not overlap A or B.
//
// Linear layers, for x [tokens, in] and weight W [in, out] (GPT-2's Conv1D
// layout):   y  = x W          Gemm(ctx, x, kNo, W, kNo, y)
//            dx = dy W^T       Gemm(ctx, dy, kNo, W, kYes, dx)
//            dW += x^T dy      Gemm(ctx, x, kYes, dy, kNo, dW, 1, 1)
// With W stored [out, in] (torch.nn.Linear) swap the Trans flags accordingly.
// A bias can ride along: BroadcastRows(ctx, b, y) then Gemm(..., beta = 1).
//
// CPU: OpenBLAS cblas_sgemm, single-threaded inside, split over the context's
// threads by rows or columns of C (see core/exec_context.h for why).

#include "absl/functional/function_ref.h"
#include "core/exec_context.h"
#include "core/ops/types.h"
#include "core/tensor.h"

namespace trident::ops {

// a: op(a) is [M, K]; b: op(b) is [K, N]; c: [M, N]. All 2-D.
void Gemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
          const Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// The same for a batch: a, b, c are 3-D [batch, rows, cols]; entry i computes
// c[i] = alpha * op(a[i]) op(b[i]) + beta * c[i]. Batch strides are arbitrary
// (e.g. heads inside a [seq, heads * dim] activation: batch stride = head dim).
void BatchedGemm(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
                 Trans trans_b, const Tensor& c, float alpha = 1.0f, float beta = 0.0f);

// Convenience: op(a) op(b) in a new tensor from ctx.allocator().
Tensor Matmul(const ExecContext& ctx, const Tensor& a, Trans trans_a, const Tensor& b,
              Trans trans_b);

// ---- Observing the products (benchmarks, profilers; not for model code). ----
//
// Gemm and BatchedGemm (and Matmul through Gemm) describe every call to the
// observer installed on the calling thread, if any, before and after running
// it. With none installed the cost is one thread-local pointer test per call.
// The fused linear ops (core/ops/linear.h) report their product through
// ObserveAsGemm below. Products computed inside other ops' kernels (the score
// and context products of the attention kernel) are not reported.

// One call, enough to replay it on other buffers of the same geometry.
struct GemmCall {
  bool batched = false;  // BatchedGemm (else Gemm).
  Trans trans_a = Trans::kNo;
  Trans trans_b = Trans::kNo;
  // op(a) is [m, k], op(b) [k, n], c [m, n]; `batch` such products (1 for Gemm).
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t batch = 1;
  // Row strides of the stored matrices (their column count when they have one
  // row), and batch strides (0 for Gemm), in elements.
  int64_t row_stride_a = 0;
  int64_t row_stride_b = 0;
  int64_t row_stride_c = 0;
  int64_t batch_stride_a = 0;
  int64_t batch_stride_b = 0;
  int64_t batch_stride_c = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // Non-zero: c is read (accumulation).

  // Floating-point operations: 2 m n k per product.
  double Flops() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(n) *
           static_cast<double>(k);
  }
};

class GemmObserver {
 public:
  virtual ~GemmObserver() = default;
  // On the calling thread, after the operands were checked, before the product.
  virtual void BeforeGemm(const GemmCall& call) = 0;
  // After the backend returned: on the CPU the product is done; on an
  // asynchronous device it is only enqueued on the context's stream.
  virtual void AfterGemm(const GemmCall& call) = 0;
};

// For fused ops whose main work is one product (core/ops/linear.h): runs
// `op` between the thread's observer's BeforeGemm and AfterGemm, describing it
// as Gemm(a, trans_a, b, trans_b, c, alpha, beta) would; just `op` when no
// observer is installed. The observer sees the product; a replay of it runs
// the plain GEMM, so the epilogue counts as non-GEMM work in such comparisons.
void ObserveAsGemm(const Tensor& a, Trans trans_a, const Tensor& b, Trans trans_b,
                   const Tensor& c, float alpha, float beta, absl::FunctionRef<void()> op);

// Installs `observer` (not owned; may be null: none) for the calling thread
// while in scope; the previously installed one is restored on destruction and
// does not see the calls meanwhile. Nest in stack order only.
class ScopedGemmObserver {
 public:
  explicit ScopedGemmObserver(GemmObserver* observer);
  ~ScopedGemmObserver();
  ScopedGemmObserver(const ScopedGemmObserver&) = delete;
  ScopedGemmObserver& operator=(const ScopedGemmObserver&) = delete;

 private:
  GemmObserver* previous_;
};

}  // namespace trident::ops

#endif  // TRIDENT_CORE_OPS_GEMM_H_
