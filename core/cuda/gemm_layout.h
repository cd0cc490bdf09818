#ifndef TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_
#define TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_

// How the project's row-major products (core/ops/gemm.h, core/ops/linear.h)
// map onto cuBLASLt's column-major D = op(A) op(B).
//
// A row-major matrix X [r, c] with row stride s >= c is, read column-major, the
// matrix X^T [c, r] with leading dimension s. So every row-major product is
// computed as its transpose, with the operands swapped:
//
//   General   C [M, N] = op(A) op(B)      (GemmLayout below)
//             C^T = op(B)^T op(A)^T:  A' = B read as [cols_B, rows_B] (ld row stride of B),
//                                          transposed iff B is
//                                     B' = A likewise, transposed iff A is
//                                     D  = C read as [N, M] (ld row stride of C)
//     A batch of such products (BatchedGemm) keeps each operand's batch
//     stride as cuBLASLt's strided-batch offset. The two linear layouts below
//     are this mapping for their operands.
//
//   Forward   y [M, N] = x [M, K] W [K, N]
//             y^T = W^T x^T:  A = W  read as [N, K] (ld N), op N
//                             B = x  read as [K, M] (ld K), op N
//                             D = y  read as [N, M] (ld N)
//     cuBLASLt's bias is indexed by the rows of D, i.e. by the output feature
//     n: exactly the [N] bias of the layer, broadcast over tokens. The GELU
//     auxiliary output (the pre-activation) has D's layout.
//
//   Weight gradient  dW [K, N] += x^T [K, M] dy [M, N]
//             dW^T = dy^T x:  A = dy read as [N, M] (ld N), op N
//                             B = x  read as [K, M] (ld K), op T -> [M, K]
//                             D = dW read as [N, K] (ld N), beta = 1
//     The bias gradient db[n] = sum over tokens of dy[m, n] is the sum of A
//     over the GEMM's k dimension (the tokens M), one value per row of D:
//     that is CUBLASLT_EPILOGUE_BGRADA. (BGRADB would reduce B = x, giving a
//     [K] vector: the right variant for the [out, in] weight layout of
//     torch.nn.Linear, where the operands are the other way round.)

#include <cstdint>
#include <string>
#include <utility>

namespace trident::cuda {

// One operand as cuBLASLt sees it: the stored column-major matrix (rows,
// cols, leading dimension) and whether the product reads it transposed.
struct LtOperand {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t ld = 0;
  bool transpose = false;
  // Elements between consecutive matrices of a batch (0 for a single product).
  int64_t batch_stride = 0;

  friend bool operator==(const LtOperand&, const LtOperand&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const LtOperand& x) {
    return H::combine(std::move(h), x.rows, x.cols, x.ld, x.transpose, x.batch_stride);
  }
};

// D [m, n] = op(A) [m, k] op(B) [k, n], column-major; `batch` such products.
struct LtGemmLayout {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  int64_t batch = 1;
  LtOperand a;
  LtOperand b;
  LtOperand d;

  friend bool operator==(const LtGemmLayout&, const LtGemmLayout&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const LtGemmLayout& x) {
    return H::combine(std::move(h), x.m, x.n, x.k, x.batch, x.a, x.b, x.d);
  }
};

// A row-major product as core/ops/gemm.h defines it: C [m, n] = op(A) [m, k]
// op(B) [k, n], each matrix with unit column stride and the given row stride
// (elements), `batch` products at the given batch strides.
struct RowMajorGemm {
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  bool transpose_a = false;
  bool transpose_b = false;
  int64_t row_stride_a = 0;
  int64_t row_stride_b = 0;
  int64_t row_stride_c = 0;
  int64_t batch = 1;
  int64_t batch_stride_a = 0;
  int64_t batch_stride_b = 0;
  int64_t batch_stride_c = 0;
};

// The cuBLASLt layout of `gemm`: A' = gemm's B, B' = gemm's A, D = C^T.
LtGemmLayout GemmLayout(const RowMajorGemm& gemm);

// y [tokens, out] = x [tokens, in] W [in, out], all row-major and contiguous.
LtGemmLayout ForwardLayout(int64_t tokens, int64_t in_features, int64_t out_features);

// dW [in, out] += x^T dy for x [tokens, in], dy [tokens, out].
LtGemmLayout WeightGradLayout(int64_t tokens, int64_t in_features, int64_t out_features);

// "m=.. n=.. k=.. A[r x c, ld, N|T] B[...] D[...]" for error messages, with
// " batch=.. strides a/b/d" appended for a batch.
std::string LayoutToString(const LtGemmLayout& layout);

}  // namespace trident::cuda

#endif  // TRIDENT_CORE_CUDA_GEMM_LAYOUT_H_
